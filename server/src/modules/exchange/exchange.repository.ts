import { and, desc, eq, inArray, isNull, lte, ne, sql } from 'drizzle-orm';
import type { ExchangeEvent } from '@casebridge/shared';
import { rowsOf, type Db, type Tx } from '../../db/client.js';
import {
  constituents,
  conversations,
  exchangeHandoffs,
  exchangeInbox,
  exchangeKeys,
  exchangeNonces,
  exchangeOutbox,
  exchangePartners,
  groups,
} from '../../db/schema.js';

export type PartnerRow = typeof exchangePartners.$inferSelect;
export type KeyRow = typeof exchangeKeys.$inferSelect;
export type HandoffRow = typeof exchangeHandoffs.$inferSelect;
export type OutboxRow = typeof exchangeOutbox.$inferSelect;

/** Open handoffs hold their work: a second offer of the same conversation or case is refused. */
const OPEN_STATES = ['sending', 'offered', 'accepted'] as const;

/** The SQL of the Service Exchange. Only this file reads and writes the exchange tables. */
export class ExchangeRepository {
  constructor(private readonly db: Db) {}

  // ---- partners and keys -------------------------------------------------------------------------------

  async partners(agencyId: string): Promise<PartnerRow[]> {
    return this.db.select().from(exchangePartners).where(eq(exchangePartners.agencyId, agencyId)).orderBy(exchangePartners.name);
  }

  async anyPartner(): Promise<boolean> {
    const [row] = await this.db.select({ id: exchangePartners.id }).from(exchangePartners).limit(1);
    return Boolean(row);
  }

  async partner(id: string, tx: Tx | Db = this.db): Promise<PartnerRow | undefined> {
    const [row] = await tx.select().from(exchangePartners).where(eq(exchangePartners.id, id));
    return row;
  }

  async insertPartner(tx: Tx, values: typeof exchangePartners.$inferInsert): Promise<PartnerRow> {
    const [row] = await tx.insert(exchangePartners).values(values).returning();
    return row!;
  }

  async updatePartner(tx: Tx | Db, id: string, values: Partial<typeof exchangePartners.$inferInsert>): Promise<PartnerRow | undefined> {
    const [row] = await tx
      .update(exchangePartners)
      .set({ ...values, updatedAt: sql`now()` })
      .where(eq(exchangePartners.id, id))
      .returning();
    return row;
  }

  async keys(partnerIds: string[]): Promise<KeyRow[]> {
    if (!partnerIds.length) return [];
    return this.db.select().from(exchangeKeys).where(inArray(exchangeKeys.partnerId, partnerIds)).orderBy(exchangeKeys.createdAt);
  }

  async insertKey(tx: Tx | Db, values: typeof exchangeKeys.$inferInsert): Promise<KeyRow> {
    const [row] = await tx.insert(exchangeKeys).values(values).returning();
    return row!;
  }

  async setKeyStatus(tx: Tx | Db, partnerId: string, keyId: string, side: 'ours' | 'theirs', from: KeyRow['status'][], to: KeyRow['status']): Promise<boolean> {
    const rows = await tx
      .update(exchangeKeys)
      .set({ status: to })
      .where(and(eq(exchangeKeys.partnerId, partnerId), eq(exchangeKeys.keyId, keyId), eq(exchangeKeys.side, side), inArray(exchangeKeys.status, from)))
      .returning({ id: exchangeKeys.id });
    return rows.length > 0;
  }

  /** The key we sign with for this partner (one active at a time). */
  async signingKey(partnerId: string): Promise<KeyRow | undefined> {
    const [row] = await this.db
      .select()
      .from(exchangeKeys)
      .where(and(eq(exchangeKeys.partnerId, partnerId), eq(exchangeKeys.side, 'ours'), eq(exchangeKeys.status, 'active')))
      .orderBy(desc(exchangeKeys.createdAt))
      .limit(1);
    return row;
  }

  /** A partner's key by its id, with the partner: only an active key of an active partner verifies anything. */
  async theirKey(keyId: string): Promise<{ key: KeyRow; partner: PartnerRow } | undefined> {
    const [row] = await this.db
      .select({ key: exchangeKeys, partner: exchangePartners })
      .from(exchangeKeys)
      .innerJoin(exchangePartners, eq(exchangePartners.id, exchangeKeys.partnerId))
      .where(and(eq(exchangeKeys.keyId, keyId), eq(exchangeKeys.side, 'theirs')));
    return row;
  }

  // ---- replay protection and idempotency -----------------------------------------------------------------

  /** True the first time a nonce is seen for this partner; false for a replay (on any node: it is a row). */
  async useNonce(partnerId: string, nonce: string, expiresAt: string): Promise<boolean> {
    const rows = await this.db
      .insert(exchangeNonces)
      .values({ partnerId, nonce, expiresAt })
      .onConflictDoNothing()
      .returning({ nonce: exchangeNonces.nonce });
    return rows.length > 0;
  }

  async forgetNonces(before: string): Promise<void> {
    await this.db.delete(exchangeNonces).where(lte(exchangeNonces.expiresAt, before));
  }

  async inboxAnswer(partnerId: string, key: string): Promise<Record<string, unknown> | undefined> {
    const [row] = await this.db
      .select({ response: exchangeInbox.response })
      .from(exchangeInbox)
      .where(and(eq(exchangeInbox.partnerId, partnerId), eq(exchangeInbox.idempotencyKey, key)));
    return row?.response;
  }

  async rememberAnswer(partnerId: string, key: string, response: Record<string, unknown>): Promise<void> {
    await this.db.insert(exchangeInbox).values({ partnerId, idempotencyKey: key, response }).onConflictDoNothing();
  }

  // ---- handoffs ----------------------------------------------------------------------------------------

  async handoff(handoffId: string, direction: HandoffRow['direction'], tx: Tx | Db = this.db): Promise<HandoffRow | undefined> {
    const [row] = await tx
      .select()
      .from(exchangeHandoffs)
      .where(and(eq(exchangeHandoffs.handoffId, handoffId), eq(exchangeHandoffs.direction, direction)));
    return row;
  }

  async handoffById(agencyId: string, handoffId: string): Promise<HandoffRow[]> {
    return this.db
      .select()
      .from(exchangeHandoffs)
      .where(and(eq(exchangeHandoffs.agencyId, agencyId), eq(exchangeHandoffs.handoffId, handoffId)));
  }

  async insertHandoff(tx: Tx, values: typeof exchangeHandoffs.$inferInsert): Promise<HandoffRow> {
    const [row] = await tx.insert(exchangeHandoffs).values(values).returning();
    return row!;
  }

  /** Moves a handoff on only from the state the caller saw: of two racing decisions exactly one wins. */
  async transition(
    tx: Tx | Db,
    id: string,
    from: HandoffRow['state'][],
    change: Partial<typeof exchangeHandoffs.$inferInsert>,
  ): Promise<HandoffRow | undefined> {
    const [row] = await tx
      .update(exchangeHandoffs)
      .set({ ...change, updatedAt: sql`now()` })
      .where(and(eq(exchangeHandoffs.id, id), inArray(exchangeHandoffs.state, from)))
      .returning();
    return row;
  }

  async setSynced(tx: Tx | Db, id: string, syncedState: string): Promise<void> {
    await tx.update(exchangeHandoffs).set({ syncedState, updatedAt: sql`now()` }).where(eq(exchangeHandoffs.id, id));
  }

  /** The open handoff (either direction) of a conversation, or of a case when no conversation is given. */
  async openFor(by: { conversationId?: string; caseId?: string }, tx: Tx | Db = this.db): Promise<HandoffRow | undefined> {
    const where = by.conversationId ? eq(exchangeHandoffs.conversationId, by.conversationId) : eq(exchangeHandoffs.caseId, by.caseId!);
    const [row] = await tx
      .select()
      .from(exchangeHandoffs)
      .where(and(where, inArray(exchangeHandoffs.state, [...OPEN_STATES])))
      .orderBy(desc(exchangeHandoffs.createdAt))
      .limit(1);
    return row;
  }

  async list(
    agencyId: string,
    f: { direction?: HandoffRow['direction']; state?: HandoffRow['state']; conversationId?: string; caseId?: string; handoffId?: string },
  ): Promise<(HandoffRow & { partnerName: string; groupName: string | null })[]> {
    const conds = [eq(exchangeHandoffs.agencyId, agencyId)];
    if (f.direction) conds.push(eq(exchangeHandoffs.direction, f.direction));
    if (f.state) conds.push(eq(exchangeHandoffs.state, f.state));
    if (f.conversationId) conds.push(eq(exchangeHandoffs.conversationId, f.conversationId));
    if (f.caseId) conds.push(eq(exchangeHandoffs.caseId, f.caseId));
    if (f.handoffId) conds.push(eq(exchangeHandoffs.handoffId, f.handoffId));
    const rows = await this.db
      .select({ h: exchangeHandoffs, partnerName: exchangePartners.name, groupName: groups.name })
      .from(exchangeHandoffs)
      .innerJoin(exchangePartners, eq(exchangePartners.id, exchangeHandoffs.partnerId))
      .leftJoin(groups, eq(groups.id, exchangeHandoffs.groupId))
      .where(and(...conds))
      .orderBy(desc(exchangeHandoffs.createdAt))
      .limit(200);
    return rows.map((r) => ({ ...r.h, partnerName: r.partnerName, groupName: r.groupName }));
  }

  /** Offers whose answer time has passed, on either side. */
  async lapsedOffers(now: string): Promise<HandoffRow[]> {
    return this.db
      .select()
      .from(exchangeHandoffs)
      .where(and(eq(exchangeHandoffs.state, 'offered'), lte(exchangeHandoffs.expiresAt, now)))
      .limit(100);
  }

  /**
   * A conversation handed to a partner stays open (the constituent keeps their thread) but nobody here holds
   * it: the partner's agent answers. Only an open conversation is touched.
   */
  async releaseConversation(tx: Tx, conversationId: string): Promise<boolean> {
    const rows = await tx
      .update(conversations)
      // In progress (elsewhere): never back in our queue, where someone here could take it.
      .set({ status: 'active', assigneeId: null, assignedBy: null, version: sql`${conversations.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(conversations.id, conversationId), ne(conversations.status, 'ended')))
      .returning({ id: conversations.id });
    return rows.length > 0;
  }

  async insertConstituent(tx: Tx, values: typeof constituents.$inferInsert): Promise<string> {
    const [row] = await tx.insert(constituents).values(values).returning({ id: constituents.id });
    return row!.id;
  }

  // ---- outbox ------------------------------------------------------------------------------------------

  /** Queues an event for the partner in the caller's transaction, taking the handoff's next seq. */
  async enqueue(
    tx: Tx,
    handoffRowId: string,
    partnerId: string,
    make: (seq: number) => ExchangeEvent,
    opts: { messageId?: string } = {},
  ): Promise<ExchangeEvent | undefined> {
    if (opts.messageId) {
      // Under the handoff's row lock, so two paths that both saw a message (the live relay and the catch-up after
      // an accept) cannot both queue it.
      const [locked] = await tx.select({ handoffId: exchangeHandoffs.handoffId }).from(exchangeHandoffs).where(eq(exchangeHandoffs.id, handoffRowId)).for('update');
      const [dup] = await tx
        .select({ id: exchangeOutbox.id })
        .from(exchangeOutbox)
        .where(and(eq(exchangeOutbox.handoffId, locked!.handoffId), eq(exchangeOutbox.partnerId, partnerId), sql`${exchangeOutbox.event}->'data'->>'messageId' = ${opts.messageId}`))
        .limit(1);
      if (dup) return undefined;
    }
    const [h] = await tx
      .update(exchangeHandoffs)
      .set({ outSeq: sql`${exchangeHandoffs.outSeq} + 1` })
      .where(eq(exchangeHandoffs.id, handoffRowId))
      .returning({ seq: exchangeHandoffs.outSeq, handoffId: exchangeHandoffs.handoffId });
    const seq = h!.seq - 1;
    const event = make(seq);
    await tx.insert(exchangeOutbox).values({ partnerId, handoffId: h!.handoffId, seq, event });
    return event;
  }

  /**
   * Claims due events atomically (SKIP LOCKED plus a lease, so two nodes never send the same row at once), and
   * only the oldest unsent event of each handoff: the partner applies a handoff's events in order.
   */
  async claimDue(limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
    const rows = await this.db.execute(sql`
      update ${exchangeOutbox} set locked_until = now() + make_interval(secs => ${leaseSeconds})
      where id in (
        select o.id from ${exchangeOutbox} o
        join ${exchangePartners} p on p.id = o.partner_id
        where o.sent_at is null and o.failed_at is null and o.next_attempt_at <= now()
          and (o.locked_until is null or o.locked_until < now()) and p.status = 'active'
          and not exists (select 1 from ${exchangeOutbox} e where e.partner_id = o.partner_id and e.handoff_id = o.handoff_id
            and e.sent_at is null and e.failed_at is null and e.seq < o.seq)
        order by o.created_at limit ${limit}
        for update of o skip locked)
      returning id`);
    const ids = rowsOf<{ id: string }>(rows).map((r) => r.id);
    if (!ids.length) return [];
    return this.db.select().from(exchangeOutbox).where(inArray(exchangeOutbox.id, ids)).orderBy(exchangeOutbox.createdAt);
  }

  /** Events of a handoff not yet sent and not being sent right now: dropped. Returns their kinds. */
  async cancelUnsent(tx: Tx, handoffId: string, partnerId: string): Promise<string[]> {
    const rows = await tx
      .update(exchangeOutbox)
      .set({ failedAt: sql`now()`, lastError: 'withdrawn before delivery' })
      .where(
        and(
          eq(exchangeOutbox.handoffId, handoffId),
          eq(exchangeOutbox.partnerId, partnerId),
          isNull(exchangeOutbox.sentAt),
          isNull(exchangeOutbox.failedAt),
          sql`(${exchangeOutbox.lockedUntil} is null or ${exchangeOutbox.lockedUntil} < now())`,
        ),
      )
      .returning({ event: exchangeOutbox.event });
    return rows.map((r) => r.event.kind);
  }

  async markSent(id: string): Promise<void> {
    await this.db.update(exchangeOutbox).set({ sentAt: sql`now()`, lockedUntil: null, lastError: null }).where(eq(exchangeOutbox.id, id));
  }

  async markRetry(id: string, error: string, delayMs: number, giveUp: boolean): Promise<void> {
    await this.db
      .update(exchangeOutbox)
      .set({
        attempts: sql`${exchangeOutbox.attempts} + 1`,
        lastError: error.slice(0, 500),
        lockedUntil: null,
        nextAttemptAt: sql`now() + make_interval(secs => ${delayMs / 1000})`,
        ...(giveUp ? { failedAt: sql`now()` } : {}),
      })
      .where(eq(exchangeOutbox.id, id));
  }

  /** Per partner: events not yet delivered, and the newest error seen. */
  async outboxHealth(partnerIds: string[]): Promise<Map<string, { pending: number; lastError: string | null }>> {
    if (!partnerIds.length) return new Map();
    const rows = await this.db
      .select({
        partnerId: exchangeOutbox.partnerId,
        pending: sql<number>`count(*) filter (where ${exchangeOutbox.sentAt} is null and ${exchangeOutbox.failedAt} is null)::int`,
        lastError: sql<string | null>`(array_agg(${exchangeOutbox.lastError} order by ${exchangeOutbox.createdAt} desc) filter (where ${exchangeOutbox.lastError} is not null and ${exchangeOutbox.sentAt} is null and ${exchangeOutbox.failedAt} is null))[1]`,
      })
      .from(exchangeOutbox)
      .where(inArray(exchangeOutbox.partnerId, partnerIds))
      .groupBy(exchangeOutbox.partnerId);
    return new Map(rows.map((r) => [r.partnerId, { pending: Number(r.pending), lastError: r.lastError }]));
  }

  async pendingFor(handoffId: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(exchangeOutbox)
      .where(and(eq(exchangeOutbox.handoffId, handoffId), isNull(exchangeOutbox.sentAt), isNull(exchangeOutbox.failedAt)));
    return Number(row?.n ?? 0);
  }
}


