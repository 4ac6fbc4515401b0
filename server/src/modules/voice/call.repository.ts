import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { calls, conversations, serviceDefinitions, users } from '../../db/schema.js';

export type CallRow = typeof calls.$inferSelect;
export type CallState = CallRow['state'];

/** The calls table. Every state change is a guarded UPDATE: of two racing webhooks exactly one moves it. */
export class CallRepository {
  constructor(private readonly db: Db) {}

  /** The call with this Twilio CallSid, created on the first webhook (a retry finds the same row). */
  async upsert(input: { agencyId: string; callSid: string; fromNumber: string; toNumber: string }): Promise<CallRow> {
    await this.db.insert(calls).values(input).onConflictDoNothing({ target: calls.callSid });
    return (await this.bySid(input.callSid))!;
  }

  async bySid(callSid: string, tx: Tx | Db = this.db): Promise<CallRow | undefined> {
    const [row] = await tx.select().from(calls).where(eq(calls.callSid, callSid));
    return row;
  }

  async byId(id: string, tx: Tx | Db = this.db): Promise<CallRow | undefined> {
    const [row] = await tx.select().from(calls).where(eq(calls.id, id));
    return row;
  }

  /** The live call of a voice conversation, if any. */
  async byConversation(conversationId: string, tx: Tx | Db = this.db): Promise<CallRow | undefined> {
    const [row] = await tx.select().from(calls).where(eq(calls.conversationId, conversationId)).orderBy(sql`${calls.createdAt} desc`).limit(1);
    return row;
  }

  /** Calls on a case, oldest first, with the agent's name and the service's title. */
  async listForCase(caseId: string) {
    return this.db
      .select({ call: calls, agentName: users.displayName, serviceTitle: serviceDefinitions.title })
      .from(calls)
      .leftJoin(users, eq(users.id, calls.agentId))
      .leftJoin(serviceDefinitions, eq(serviceDefinitions.id, calls.serviceId))
      .where(eq(calls.caseId, caseId))
      .orderBy(asc(calls.createdAt));
  }

  async setLanguage(id: string, language: 'en' | 'es'): Promise<void> {
    await this.db.update(calls).set({ language, updatedAt: sql`now()` }).where(eq(calls.id, id));
  }

  async setChoice(id: string, choice: 'callback' | 'voicemail'): Promise<void> {
    await this.db.update(calls).set({ choice, updatedAt: sql`now()` }).where(eq(calls.id, id));
  }

  /** Moves the call from one of `from` to `to` with the other columns given; undefined if it was elsewhere. */
  async transition(
    tx: Tx | Db,
    id: string,
    from: CallState[],
    to: CallState,
    set: Partial<typeof calls.$inferInsert> = {},
  ): Promise<CallRow | undefined> {
    const [row] = await tx
      .update(calls)
      .set({ ...set, state: to, updatedAt: sql`now()` })
      .where(and(eq(calls.id, id), inArray(calls.state, from)))
      .returning();
    return row;
  }

  async update(tx: Tx | Db, id: string, set: Partial<typeof calls.$inferInsert>): Promise<void> {
    await tx
      .update(calls)
      .set({ ...set, updatedAt: sql`now()` })
      .where(eq(calls.id, id));
  }

  /**
   * Records that one webhook delivery was applied; false if it already was. Used inside the transaction that
   * writes the timeline entry, so a retry (or a concurrent duplicate) adds nothing.
   */
  async markSeen(tx: Tx | Db, id: string, key: string): Promise<boolean> {
    const rows = await tx
      .update(calls)
      .set({ seen: sql`array_append(${calls.seen}, ${key}::text)`, updatedAt: sql`now()` })
      .where(and(eq(calls.id, id), sql`not (${key}::text = any(${calls.seen}))`))
      .returning({ id: calls.id });
    return rows.length === 1;
  }

  /** The caller's place among the calls waiting in their group (1 = next). */
  async positionInQueue(conversationId: string): Promise<number | null> {
    const [me] = await this.db
      .select({ groupId: conversations.groupId, createdAt: conversations.createdAt, status: conversations.status })
      .from(conversations)
      .where(eq(conversations.id, conversationId));
    if (!me || me.status !== 'queued') return null;
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(conversations)
      .where(
        and(
          eq(conversations.groupId, me.groupId),
          eq(conversations.status, 'queued'),
          eq(conversations.channel, 'voice'),
          sql`(${conversations.createdAt}, ${conversations.id}) <= (${me.createdAt}::timestamptz, ${conversationId}::uuid)`,
        ),
      );
    return Number(row?.n ?? 1);
  }
}
