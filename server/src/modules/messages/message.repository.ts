import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { pgConstraint, pgErrorCode } from '../../db/client.js';
import { attachments, conversations, messages } from '../../db/schema.js';

export type MessageRow = typeof messages.$inferSelect;
export type NewMessage = Omit<typeof messages.$inferInsert, 'id' | 'seq' | 'createdAt'> & { conversationId: string };

export class MessageRepository {
  constructor(private readonly db: Db) {}

  /**
   * Appends with the next seq, idempotent on (conversationId, clientMessageId) and on externalId.
   * The conversation row is locked, so seqs are handed out one writer at a time and commit in order:
   * a reader who has seen seq N has seen everything before it (no gaps).
   */
  async append(input: NewMessage, outer?: Tx, attachmentIds: string[] = []): Promise<{ message: MessageRow; created: boolean }> {
    const run = async (tx: Tx) => {
      const [conv] = await tx
        .select({ lastSeq: conversations.lastSeq })
        .from(conversations)
        .where(eq(conversations.id, input.conversationId))
        .for('update');
      if (!conv) throw new Error(`conversation ${input.conversationId} vanished`);
      const existing = await this.findDuplicate(tx, input);
      if (existing) return { message: existing, created: false };
      const seq = conv.lastSeq + 1;
      await tx
        .update(conversations)
        .set({ lastSeq: seq, updatedAt: sql`now()` })
        .where(eq(conversations.id, input.conversationId));
      const [message] = await tx
        .insert(messages)
        .values({ ...input, seq })
        .returning();
      // The files join the message in the same commit: a message never shows up without its files.
      if (attachmentIds.length) {
        await tx
          .update(attachments)
          .set({ messageId: message!.id })
          .where(and(inArray(attachments.id, attachmentIds), isNull(attachments.messageId)));
      }
      return { message: message!, created: true };
    };
    try {
      return outer ? await run(outer) : await this.db.transaction(run);
    } catch (err) {
      // Backstop for a race the row lock should already prevent: the unique index won; return its row.
      if (!outer && pgErrorCode(err) === '23505' && /client_id|external_id/.test(pgConstraint(err) ?? '')) {
        const existing = await this.findDuplicate(this.db, input);
        if (existing) return { message: existing, created: false };
      }
      throw err;
    }
  }

  private async findDuplicate(tx: Tx | Db, input: NewMessage): Promise<MessageRow | undefined> {
    if (input.clientMessageId) {
      const [row] = await tx
        .select()
        .from(messages)
        .where(and(eq(messages.conversationId, input.conversationId), eq(messages.clientMessageId, input.clientMessageId)));
      if (row) return row;
    }
    if (input.externalId) {
      const [row] = await tx.select().from(messages).where(eq(messages.externalId, input.externalId));
      if (row) return row;
    }
    return undefined;
  }

  async findByExternalId(externalId: string): Promise<MessageRow | undefined> {
    const [row] = await this.db.select().from(messages).where(eq(messages.externalId, externalId));
    return row;
  }

  async findById(id: string): Promise<MessageRow | undefined> {
    const [row] = await this.db.select().from(messages).where(eq(messages.id, id));
    return row;
  }

  /**
   * Takes a text for sending: exactly one caller (on any node) gets the row back. A send that stalled (the node
   * died after taking it) may be taken again once `staleBefore` has passed.
   */
  async takeForDelivery(id: string, staleBefore: Date, retry = false): Promise<MessageRow | undefined> {
    const states = retry ? sql`('failed', 'undelivered')` : sql`('pending')`;
    const [row] = await this.db
      .update(messages)
      .set({ deliveryStatus: 'sending', deliveryAttempts: sql`${messages.deliveryAttempts} + 1`, deliveryUpdatedAt: sql`now()` })
      .where(
        and(
          eq(messages.id, id),
          sql`(${messages.deliveryStatus} in ${states} or (${messages.deliveryStatus} = 'sending' and ${messages.deliveryUpdatedAt} < ${staleBefore.toISOString()}))`,
        ),
      )
      .returning();
    return row;
  }

  /** Twilio took the text: its MessageSid finds the message when the status callbacks come. */
  async markHandedOver(id: string, messageSid: string, status: 'queued' | 'sent' | 'delivered'): Promise<MessageRow | undefined> {
    const [row] = await this.db
      .update(messages)
      .set({ externalId: messageSid, deliveryStatus: status, deliveryErrorCode: null, deliveryError: null, deliveryUpdatedAt: sql`now()` })
      .where(and(eq(messages.id, id), eq(messages.deliveryStatus, 'sending')))
      .returning();
    return row;
  }

  async markFailed(id: string, errorCode: string, error: string): Promise<MessageRow | undefined> {
    const [row] = await this.db
      .update(messages)
      .set({ deliveryStatus: 'failed', deliveryErrorCode: errorCode, deliveryError: error, deliveryUpdatedAt: sql`now()` })
      .where(eq(messages.id, id))
      .returning();
    return row;
  }

  /**
   * Applies a Twilio status callback. Callbacks can arrive late, twice or out of order, so a status only moves
   * forward (queued → sent → delivered, or to undelivered/failed); a repeat changes nothing and returns undefined.
   */
  async applyStatus(messageSid: string, status: 'queued' | 'sent' | 'delivered' | 'undelivered' | 'failed', errorCode: string | null, error: string | null): Promise<MessageRow | undefined> {
    const rank = (col: typeof messages.deliveryStatus) =>
      sql`(case ${col} when 'pending' then 0 when 'sending' then 1 when 'queued' then 2 when 'sent' then 3 else 4 end)`;
    const target = { queued: 2, sent: 3, delivered: 4, undelivered: 4, failed: 4 }[status];
    const [row] = await this.db
      .update(messages)
      .set({ deliveryStatus: status, deliveryErrorCode: errorCode, deliveryError: error, deliveryUpdatedAt: sql`now()` })
      .where(and(eq(messages.externalId, messageSid), sql`${rank(messages.deliveryStatus)} < ${target}`))
      .returning();
    return row;
  }

  /** Texts left pending or stalled mid-send (a node stopped): the sweeper sends them. */
  async listUndelivered(staleBefore: Date, limit = 100): Promise<string[]> {
    const rows = await this.db
      .select({ id: messages.id })
      .from(messages)
      .where(
        sql`${messages.deliveryStatus} in ('pending', 'sending') and coalesce(${messages.deliveryUpdatedAt}, ${messages.createdAt}) < ${staleBefore.toISOString()}`,
      )
      .orderBy(asc(messages.createdAt))
      .limit(limit);
    return rows.map((r) => r.id);
  }

  async findByClientId(conversationId: string, clientMessageId: string): Promise<MessageRow | undefined> {
    return this.findDuplicate(this.db, { conversationId, clientMessageId } as NewMessage);
  }

  async visibilityOf(messageId: string): Promise<'public' | 'internal' | undefined> {
    const [row] = await this.db.select({ v: messages.visibility }).from(messages).where(eq(messages.id, messageId));
    return row?.v;
  }

  /** Messages after a cursor in seq order; `publicOnly` for constituents, who never see internal notes. */
  async listAfter(conversationId: string, afterSeq: number, limit: number, publicOnly: boolean): Promise<MessageRow[]> {
    const where = [eq(messages.conversationId, conversationId), gt(messages.seq, afterSeq)];
    if (publicOnly) where.push(eq(messages.visibility, 'public'));
    return this.db
      .select()
      .from(messages)
      .where(and(...where))
      .orderBy(asc(messages.seq))
      .limit(limit);
  }

  /** Public messages of every conversation of a case, oldest first (the portal's view of a case). */
  async listPublicForCase(caseId: string, limit = 500): Promise<MessageRow[]> {
    const rows = await this.db
      .select({ m: messages })
      .from(messages)
      .innerJoin(conversations, eq(conversations.id, messages.conversationId))
      .where(and(eq(conversations.caseId, caseId), eq(messages.visibility, 'public')))
      .orderBy(asc(messages.createdAt), asc(messages.seq))
      .limit(limit);
    return rows.map((r) => r.m);
  }
}
