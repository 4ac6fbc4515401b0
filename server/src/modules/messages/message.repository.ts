import { and, asc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { pgConstraint, pgErrorCode } from '../../db/client.js';
import { attachments, conversations, messages } from '../../db/schema.js';

export type MessageRow = typeof messages.$inferSelect;
export type NewMessage = Omit<typeof messages.$inferInsert, 'id' | 'seq' | 'createdAt'> & { conversationId: string };

/** How many queued messages one commit takes at most. */
const MAX_BATCH = 200;

interface Pending {
  input: NewMessage;
  attachmentIds: string[];
  resolve: (r: Appended) => void;
  reject: (err: unknown) => void;
}
export interface Appended {
  message: MessageRow;
  created: boolean;
}

export class MessageRepository {
  private readonly queue: Pending[] = [];
  private flushing = false;

  constructor(private readonly db: Db) {}

  /**
   * Appends with the next seq, idempotent on (conversationId, clientMessageId) and on externalId.
   * The conversation row is locked, so seqs are handed out one writer at a time and commit in order:
   * a reader who has seen seq N has seen everything before it (no gaps).
   *
   * Without an outer transaction the message joins a group commit: everything queued while the previous
   * commit was in flight is written in one transaction (a handful of statements for the whole batch), and each
   * caller is answered after that commit. At low load a batch is one message, so nothing waits for company.
   */
  async append(input: NewMessage, outer?: Tx, attachmentIds: string[] = []): Promise<Appended> {
    if (outer) return this.appendOne(outer, input, attachmentIds);
    return new Promise<Appended>((resolve, reject) => {
      this.queue.push({ input, attachmentIds, resolve, reject });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BATCH);
        // Messages with a Twilio id are deduplicated on it one by one; the rest go together.
        const together = batch.filter((p) => !p.input.externalId);
        const alone = batch.filter((p) => p.input.externalId);
        if (together.length > 1) {
          try {
            const results = await this.db.transaction((tx) => this.appendMany(tx, together));
            together.forEach((p, i) => p.resolve(results[i]!));
          } catch {
            // One bad message (a vanished conversation, a race another node won) must not fail its neighbours.
            alone.unshift(...together);
          }
        } else {
          alone.unshift(...together);
        }
        for (const p of alone) await this.appendAlone(p.input, p.attachmentIds).then(p.resolve, p.reject);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** One message in its own transaction, with the backstop for a duplicate another node stored first. */
  private async appendAlone(input: NewMessage, attachmentIds: string[]): Promise<Appended> {
    try {
      return await this.db.transaction((tx) => this.appendOne(tx, input, attachmentIds));
    } catch (err) {
      // Backstop for a race the row lock should already prevent: the unique index won; return its row.
      if (pgErrorCode(err) === '23505' && /client_id|external_id/.test(pgConstraint(err) ?? '')) {
        const existing = await this.findDuplicate(this.db, input);
        if (existing) return { message: existing, created: false };
      }
      throw err;
    }
  }

  private async appendOne(tx: Tx, input: NewMessage, attachmentIds: string[]): Promise<Appended> {
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
    if (attachmentIds.length) await this.linkFiles(tx, message!.id, attachmentIds);
    return { message: message!, created: true };
  }

  private async linkFiles(tx: Tx, messageId: string, attachmentIds: string[]): Promise<void> {
    await tx
      .update(attachments)
      .set({ messageId })
      .where(and(inArray(attachments.id, attachmentIds), isNull(attachments.messageId)));
  }

  /**
   * A batch in one transaction with set-based statements: find the ones already stored (retries), lock the
   * conversations in id order (two nodes' batches never deadlock on each other), hand out consecutive seqs per
   * conversation in arrival order, insert every new message at once. Results come back in input order.
   */
  private async appendMany(tx: Tx, batch: Pending[]): Promise<Appended[]> {
    const keyed = batch.filter((p) => p.input.clientMessageId);
    const stored = keyed.length
      ? await tx
          .select()
          .from(messages)
          .where(
            or(
              ...keyed.map((p) =>
                and(eq(messages.conversationId, p.input.conversationId), eq(messages.clientMessageId, p.input.clientMessageId!)),
              ),
            ),
          )
      : [];
    const key = (conversationId: string, clientMessageId: string | null | undefined) => `${conversationId}|${clientMessageId}`;
    const found = new Map(stored.map((m) => [key(m.conversationId, m.clientMessageId), m]));
    // A retry inside the same batch resolves to the first copy.
    const firstOfKey = new Map<string, number>();
    const fresh: number[] = [];
    batch.forEach((p, i) => {
      const k = p.input.clientMessageId ? key(p.input.conversationId, p.input.clientMessageId) : undefined;
      if (k && found.has(k)) return;
      if (k && firstOfKey.has(k)) return;
      if (k) firstOfKey.set(k, i);
      fresh.push(i);
    });

    const counts = new Map<string, number>();
    for (const i of fresh) counts.set(batch[i]!.input.conversationId, (counts.get(batch[i]!.input.conversationId) ?? 0) + 1);
    const ids = [...counts.keys()].sort();
    const lastSeqs = new Map<string, number>();
    if (ids.length) {
      const locked = await tx
        .select({ id: conversations.id, lastSeq: conversations.lastSeq })
        .from(conversations)
        .where(inArray(conversations.id, ids))
        .orderBy(asc(conversations.id))
        .for('update');
      if (locked.length !== ids.length) throw new Error('a conversation vanished');
      for (const c of locked) lastSeqs.set(c.id, c.lastSeq);
      await tx.execute(sql`update ${conversations} c set last_seq = c.last_seq + v.n, updated_at = now()
        from (values ${sql.join(
          ids.map((id) => sql`(${id}::uuid, ${counts.get(id)!}::int)`),
          sql`, `,
        )}) as v(id, n) where c.id = v.id`);
    }
    const next = new Map(lastSeqs);
    const values = fresh.map((i) => {
      const { input } = batch[i]!;
      const seq = next.get(input.conversationId)! + 1;
      next.set(input.conversationId, seq);
      return { ...input, seq };
    });
    const inserted = values.length ? await tx.insert(messages).values(values).returning() : [];
    const bySeq = new Map(inserted.map((m) => [`${m.conversationId}|${m.seq}`, m]));
    const results: Appended[] = new Array(batch.length);
    fresh.forEach((i, j) => {
      results[i] = { message: bySeq.get(`${values[j]!.conversationId}|${values[j]!.seq}`)!, created: true };
    });
    for (const [i, p] of batch.entries()) {
      if (results[i]) continue;
      const k = key(p.input.conversationId, p.input.clientMessageId);
      results[i] = { message: found.get(k) ?? results[firstOfKey.get(k)!]!.message, created: false };
    }
    for (const [i, p] of batch.entries()) {
      if (results[i]!.created && p.attachmentIds.length) await this.linkFiles(tx, results[i]!.message.id, p.attachmentIds);
    }
    return results;
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
