import { AppError } from '../../errors.js';
import type { Principal, StaffPrincipal } from '../principal.js';
import type { ConversationView } from './conversation.repository.js';

/**
 * Who may see and act on a conversation. A conversation the principal may not see is NOT_FOUND,
 * never FORBIDDEN, so ids of other people's conversations cannot be probed.
 *
 * - Constituents: only their own conversations (same agency, same constituent).
 * - Agents and supervisors: conversations of the groups they belong to.
 * - Admins: every conversation of their agency, read-only: admins administer, they do not chat.
 * - Auditors: none (they read the audit log, not what constituents wrote).
 */
export function canSee(p: Principal, c: ConversationView): boolean {
  if (c.agencyId !== p.agencyId) return false;
  if (p.kind === 'constituent') return c.constituentId === p.constituentId;
  if (p.role === 'auditor') return false;
  if (p.role === 'admin') return true;
  return p.groupIds.includes(c.groupId) || c.assigneeId === p.userId;
}

export function assertVisible(p: Principal, c: ConversationView | undefined): ConversationView {
  if (!c || !canSee(p, c)) throw new AppError('NOT_FOUND', 'Conversation not found');
  return c;
}

/** Staff who may act (reply, claim, end): agents and supervisors who can see it. */
export function assertStaffCanAct(p: StaffPrincipal, c: ConversationView): void {
  if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins can read conversations but not take part in them');
  if (p.role === 'auditor') throw new AppError('FORBIDDEN', 'Auditors do not take part in conversations');
}
