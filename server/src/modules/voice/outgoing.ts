import { isUuid } from '@casebridge/shared';
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { agencies, caseEvents, cases, channelIdentities, constituents, users } from '../../db/schema.js';

const IDENTITY = /^client:agent_([0-9a-f]{32})$/;
const E164 = /^\+[1-9]\d{6,14}$/;

export type OutgoingDecision =
  | { ok: true; agentId: string; to: string; caseId: string | null }
  | { ok: false; reason: 'not_staff' | 'not_allowed_to_call' | 'not_a_constituent' | 'bad_number' };

/**
 * Who may place a call from the browser, and to whom (the TwiML App's voice URL). Toll-fraud protection: only
 * an active agent or supervisor of the agency whose account the call is on, identified by the Voice SDK
 * identity their access token gave them, and only to a number of one of that agency's constituents (a phone
 * on file, or a number that texted or called in). Everything else is refused before anything is dialled.
 */
export class OutgoingCalls {
  constructor(private readonly db: Db) {}

  /** The agencies on this Twilio account (usually one); the webhook's signature decides which. */
  async agencyIdsByAccount(accountSid: string): Promise<string[]> {
    const rows = await this.db.select({ id: agencies.id }).from(agencies).where(eq(agencies.twilioAccountSid, accountSid));
    return rows.map((r) => r.id);
  }

  async decide(agencyId: string, p: { from: string; to: string; caseId?: string }): Promise<OutgoingDecision> {
    const m = IDENTITY.exec(p.from);
    if (!m) return { ok: false, reason: 'not_staff' };
    const hex = m[1]!;
    const userId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    const [u] = await this.db
      .select({ id: users.id, role: users.role })
      .from(users)
      .where(and(eq(users.id, userId), eq(users.agencyId, agencyId), isNull(users.disabledAt)));
    if (!u) return { ok: false, reason: 'not_staff' };
    if (u.role === 'admin') return { ok: false, reason: 'not_allowed_to_call' };
    const to = p.to.trim();
    if (!E164.test(to)) return { ok: false, reason: 'bad_number' };
    const owners = await this.constituentsWithNumber(agencyId, to);
    if (!owners.length) return { ok: false, reason: 'not_a_constituent' };
    let caseId: string | null = null;
    if (p.caseId && isUuid(p.caseId)) {
      const [c] = await this.db
        .select({ id: cases.id })
        .from(cases)
        .where(and(eq(cases.id, p.caseId), eq(cases.agencyId, agencyId), inArray(cases.constituentId, owners)));
      caseId = c?.id ?? null;
    }
    return { ok: true, agentId: u.id, to, caseId };
  }

  async caseOfAgency(agencyId: string, caseId: string): Promise<boolean> {
    if (!isUuid(caseId)) return false;
    const [c] = await this.db.select({ id: cases.id }).from(cases).where(and(eq(cases.id, caseId), eq(cases.agencyId, agencyId)));
    return Boolean(c);
  }

  /** The agency's constituents reachable on this number. */
  private async constituentsWithNumber(agencyId: string, number: string): Promise<string[]> {
    const byPhone = await this.db
      .select({ id: constituents.id })
      .from(constituents)
      .where(and(eq(constituents.agencyId, agencyId), eq(constituents.phone, number)));
    const byChannel = await this.db
      .select({ id: channelIdentities.constituentId })
      .from(channelIdentities)
      .where(and(eq(channelIdentities.agencyId, agencyId), inArray(channelIdentities.channel, ['sms', 'voice']), eq(channelIdentities.address, number)));
    return [...new Set([...byPhone, ...byChannel].map((r) => r.id))];
  }

  /**
   * One timeline entry per call and kind however often Twilio retries the webhook: the check and the insert
   * run under a transaction-scoped advisory lock on the CallSid.
   */
  async logOnce(
    caseId: string,
    kind: 'call.outgoing' | 'call.outgoing_ended',
    actorUserId: string | null,
    callSid: string,
    data: Record<string, unknown>,
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${kind}:${callSid}`}))`);
      const [seen] = await tx
        .select({ id: caseEvents.id })
        .from(caseEvents)
        .where(and(eq(caseEvents.caseId, caseId), eq(caseEvents.kind, kind), sql`${caseEvents.data}->>'callSid' = ${callSid}`));
      if (seen) return false;
      await tx.insert(caseEvents).values({ caseId, kind, actorKind: actorUserId ? 'agent' : 'system', actorUserId, data: { ...data, callSid } });
      return true;
    });
  }
}
