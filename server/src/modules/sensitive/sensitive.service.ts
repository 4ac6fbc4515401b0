import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Message, PortalSecureRequest, SecureFieldKind, SecureFieldValue, SensitivePattern } from '@casebridge/shared';
import type { Db } from '../../db/client.js';
import { agencies, conversations, secureFields } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { SecretBox } from '../../lib/secret-box.js';
import { toIso } from '../../lib/time.js';
import { checkPattern, compilePatterns, maskSensitive, type MaskResult } from '../../lib/sensitive.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import { assertStaffCanAct, canSee } from '../conversations/conversation.access.js';
import { toMessage } from '../conversations/conversation.mapper.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { MessageRepository } from '../messages/message.repository.js';
import type { ConstituentPrincipal, StaffPrincipal } from '../principal.js';
import { constituentText } from '../constituent-text.js';

/** How long a node trusts its copy of an agency's patterns (another node's change shows within this). */
const PATTERN_TTL_MS = 10_000;

/** Masks SSNs, cards and the agency's own patterns in what constituents write (see lib/sensitive.ts). */
export class SensitiveMasker {
  private readonly cache = new Map<string, { at: number; res: RegExp[] }>();

  constructor(private readonly d: { db: Db; audit: AuditRepository; now?: () => number }) {}

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  async mask(agencyId: string, text: string): Promise<MaskResult> {
    return maskSensitive(text, await this.compiled(agencyId));
  }

  private async compiled(agencyId: string): Promise<RegExp[]> {
    const hit = this.cache.get(agencyId);
    if (hit && this.now() - hit.at < PATTERN_TTL_MS) return hit.res;
    const res = compilePatterns(await this.patterns(agencyId));
    this.cache.set(agencyId, { at: this.now(), res });
    return res;
  }

  async patterns(agencyId: string): Promise<SensitivePattern[]> {
    const [row] = await this.d.db.select({ p: agencies.sensitivePatterns }).from(agencies).where(eq(agencies.id, agencyId));
    return row?.p ?? [];
  }

  /** Admins replace the agency's patterns; each must pass the safety check (it runs on every message). */
  async setPatterns(p: StaffPrincipal, patterns: SensitivePattern[]): Promise<SensitivePattern[]> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change masking patterns');
    const issues = patterns.flatMap((x, i) => {
      const problem = checkPattern(x.pattern);
      return problem ? [{ path: ['patterns', i, 'pattern'], message: `The pattern ${problem}` }] : [];
    });
    if (issues.length) throw new AppError('INVALID_PAYLOAD', issues[0]!.message, { issues });
    await this.d.db.update(agencies).set({ sensitivePatterns: patterns }).where(eq(agencies.id, p.agencyId));
    this.cache.delete(p.agencyId);
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      actorRole: p.role,
      action: 'sensitive_patterns.update',
      objectType: 'agency',
      objectId: p.agencyId,
      outcome: 'success',
      detail: { count: patterns.length, labels: patterns.map((x) => x.label) },
    });
    return patterns;
  }
}

export interface SecureFieldDeps {
  db: Db;
  conversations: ConversationService;
  messages: MessageRepository;
  notifier: Notifier;
  audit: AuditRepository;
  box: SecretBox;
}

/**
 * Secure-field requests: an agent asks for a value (an SSN, a card, an account number); the constituent answers
 * in a separate form (widget or portal). The value is sealed at rest and never becomes a message: the
 * timeline says only that it was asked for and provided. Who may reveal it: admins, supervisors who can see
 * the conversation, and the agent it is assigned to; every reveal (and refusal) is audited.
 */
export class SecureFields {
  constructor(private readonly d: SecureFieldDeps) {}

  async request(p: StaffPrincipal, conversationId: string, input: { label: string; kind: SecureFieldKind }): Promise<Message> {
    const conv = await this.d.conversations.get(p, conversationId);
    assertStaffCanAct(p, conv);
    if (conv.assigneeId !== p.userId && p.role !== 'supervisor') {
      throw new AppError('FORBIDDEN', conv.assigneeId ? 'A colleague is handling this conversation' : 'Take this conversation first');
    }
    if (conv.status === 'ended') throw new AppError('CONFLICT', 'This conversation has ended');
    if (conv.channel === 'voice' || conv.channel === 'sms') {
      throw new AppError('CONFLICT', 'Secure forms open in the chat widget or the portal; ask by web chat or the portal instead');
    }
    const row = await this.d.db.transaction(async (tx) => {
      const [field] = await tx
        .insert(secureFields)
        .values({ agencyId: conv.agencyId, conversationId: conv.id, caseId: conv.caseId, label: input.label, kind: input.kind, requestedBy: p.userId })
        .returning();
      const { message } = await this.d.messages.append(
        {
          conversationId: conv.id,
          clientMessageId: `secure-field:${field!.id}`,
          authorKind: 'system',
          visibility: 'public',
          body: constituentText(conv.language).secureRequested(p.displayName, input.label),
          channel: conv.channel,
          meta: { secureField: { id: field!.id, label: input.label, kind: input.kind, state: 'requested' } },
        },
        tx,
      );
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'secure_field.request', objectType: 'secure_field', objectId: field!.id, outcome: 'success', detail: { conversationId: conv.id, kind: input.kind } },
        tx,
      );
      return message;
    });
    const message = toMessage(row);
    this.d.notifier.messageCreated(message, conv);
    return message;
  }

  /**
   * Requests on a case's conversations (by the conversation's current case) still waiting for a value: what the
   * portal shows a form for. Never returns a value.
   */
  async openForCase(caseId: string): Promise<PortalSecureRequest[]> {
    const rows = await this.d.db
      .select({ id: secureFields.id, label: secureFields.label, kind: secureFields.kind, createdAt: secureFields.createdAt })
      .from(secureFields)
      .innerJoin(conversations, eq(conversations.id, secureFields.conversationId))
      .where(and(eq(conversations.caseId, caseId), isNull(secureFields.providedAt)))
      .orderBy(asc(secureFields.createdAt), asc(secureFields.id));
    return rows.map((r) => ({ id: r.id, label: r.label, kind: r.kind, requestedAt: toIso(r.createdAt) }));
  }

  /** The constituent's answer: sealed, once; the timeline gets a note without the value. */
  async provide(p: ConstituentPrincipal, id: string, value: string): Promise<Message> {
    const [field] = await this.d.db.select().from(secureFields).where(eq(secureFields.id, id));
    if (!field || field.agencyId !== p.agencyId) throw new AppError('NOT_FOUND', 'Request not found');
    const conv = await this.d.conversations.get(p, field.conversationId);
    const sealed = this.d.box.seal(value);
    const row = await this.d.db.transaction(async (tx) => {
      const [done] = await tx
        .update(secureFields)
        .set({ valueSealed: sealed, providedAt: new Date().toISOString() })
        .where(and(eq(secureFields.id, id), isNull(secureFields.providedAt)))
        .returning({ id: secureFields.id });
      if (!done) return undefined;
      const { message } = await this.d.messages.append(
        {
          conversationId: conv.id,
          clientMessageId: `secure-field-provided:${id}`,
          authorKind: 'system',
          visibility: 'public',
          body: constituentText(conv.language).secureProvided(field.label),
          channel: conv.channel,
          meta: { secureField: { id, label: field.label, kind: field.kind, state: 'provided' } },
        },
        tx,
      );
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'constituent', actorId: p.constituentId, action: 'secure_field.provide', objectType: 'secure_field', objectId: id, outcome: 'success', detail: { conversationId: conv.id } },
        tx,
      );
      return message;
    });
    if (!row) throw new AppError('CONFLICT', 'This value was already sent');
    const message = toMessage(row);
    this.d.notifier.messageCreated(message, conv);
    return message;
  }

  /** Shows the value to a permitted staff member; audited either way. */
  async reveal(p: StaffPrincipal, id: string): Promise<SecureFieldValue> {
    const [field] = await this.d.db.select().from(secureFields).where(eq(secureFields.id, id));
    if (!field || field.agencyId !== p.agencyId) throw new AppError('NOT_FOUND', 'Secure value not found');
    const conv = await this.d.conversations.get(p, field.conversationId);
    const allowed = p.role === 'admin' || (p.role === 'supervisor' && canSee(p, conv)) || conv.assigneeId === p.userId;
    const audit = (outcome: 'success' | 'denied') =>
      this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'secure_field.reveal', objectType: 'secure_field', objectId: id, outcome, detail: { conversationId: conv.id } });
    if (!allowed) {
      await audit('denied');
      throw new AppError('FORBIDDEN', 'Only the assigned agent, a supervisor or an admin may see this value');
    }
    if (!field.valueSealed) throw new AppError('CONFLICT', 'The constituent has not sent this value yet');
    const value = this.d.box.open(field.valueSealed);
    if (value === undefined) throw new AppError('CONFLICT', 'This value can no longer be read (the server secret changed)');
    await audit('success');
    return { id, label: field.label, value };
  }
}
