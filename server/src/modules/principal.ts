import type { Role } from '@casebridge/shared';

/** A signed-in staff member, as every route and socket event sees them. */
export interface StaffPrincipal {
  kind: 'staff';
  userId: string;
  agencyId: string;
  role: Role;
  displayName: string;
  groupIds: string[];
  sessionId: string;
}

/** A constituent holding a widget token: sees only their own conversations, public messages only. */
export interface ConstituentPrincipal {
  kind: 'constituent';
  agencyId: string;
  constituentId: string;
  widgetSessionId: string;
}

export type Principal = StaffPrincipal | ConstituentPrincipal;
