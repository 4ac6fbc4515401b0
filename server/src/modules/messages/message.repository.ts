import { randomUUID } from 'node:crypto';
import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { pgConstraint, pgErrorCode, rowsOf } from '../../db/client.js';
import { attachments, conversations, messages } from '../../db/schema.js';

export type MessageRow = typeof messages.$inferSelect;
export type NewMessage = Omit<typeof messages.$inferInsert, 'id' | 'seq' | 'createdAt'> & { conversationId: string };

/** How many queued messages one commit takes at most. */
const MAX_BATCH = 200;

/** What a batched message may set: everything else takes the column default. */
const BATCH_FIELDS = ['conversationId', 'clientMessageId', 'authorKind', 'authorUserId', 'authorConstituentId', 'authorName', 'visibility', 'body', 'channel', 'deliveryStatus', 'meta'] as const;
const INSERTED_COLUMNS = 'id, conversation_id, client_message_id, author_kind, author_user_id, author_constituent_id, author_name, visibility, body, channel, delivery_status, meta';
/** Timestamps as PostgreSQL's text, like the query builder's string mode. */
const RETURNED_COLUMNS =
  'id, conversation_id, seq, client_message_id, external_id, author_kind, author_user_id, author_constituent_id, author_name, visibility, body, channel, delivery_status, delivery_error_code, delivery_error, delivery_attempts, delivery_updated_at::text as delivery_updated_at, meta, created_at::text as created_at';

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** A message without a Twilio id or files, setting only the columns the batch statement writes. */
function batchable(p: Pending): boolean {
  if (p.attachmentIds.length || p.input.externalId) return false;
  return Object.entries(p.input).every(([k, v]) => v === undefined || (BATCH_FIELDS as readonly string[]).includes(k));
}

function toJsonRow(input: NewMessage): Record<string, unknown> {
  const row: Record<string, unknown> = { id: randomUUID(), visibility: 'public' };
  for (const f of BATCH_FIELDS) if (input[f] !== undefined) row[snake(f)] = input[f];
  return row;
}

type RawMessage = Record<string, unknown>;
function fromRaw(r: RawMessage): MessageRow {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [camel(k), v])) as MessageRow;
}

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
  private inFlight = 0;
  /** Conversations with a batch in flight. */
  private readonly busy = new Set<string>();
  /** Batches in flight at once: several on PostgreSQL (a pool), one on PGlite (one connection). */
  private readonly writers: number;

  constructor(
    private readonly db: Db,
    opts: { writers?: number } = {},
  ) {
    this.writers = opts.writers ?? 1;
  }

  /**
   * Appends with the next seq, idempotent on (conversationId, clientMessageId) and on externalId.
   * The conversation row is locked, so seqs are handed out one writer at a time and commit in order:
   * a reader who has seen seq N has seen everything before it (no gaps).
   *
   * Without an outer transaction the message joins a group commit: what queues while earlier batches are in
   * flight is written together in one statement, and each caller is answered after that commit. At low load a
   * batch is one message, so nothing waits for company.
   */
  async append(input: NewMessage, outer?: Tx, attachmentIds: string[] = []): Promise<Appended> {
    if (outer) return this.appendOne(outer, input, attachmentIds);
    return new Promise<Appended>((resolve, reject) => {
      this.queue.push({ input, attachmentIds, resolve, reject });
      this.flush();
    });
  }

  /**
   * Starts batches while fewer than `writers` are in flight. A batch takes queued messages in order, skipping
   * conversations that already have a batch in flight (their messages wait, so each conversation's messages
   * still commit in the order they were queued, and two batches never lock the same conversation rows).
   */
  private flush(): void {
    while (this.inFlight < this.writers && this.queue.length) {
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      for (const p of this.queue) {
        if (batch.length < MAX_BATCH && !this.busy.has(p.input.conversationId)) batch.push(p);
        else rest.push(p);
      }
      if (!batch.length) return;
      this.queue.splice(0, this.queue.length, ...rest);
      this.inFlight++;
      const ids = [...new Set(batch.map((p) => p.input.conversationId))];
      for (const id of ids) this.busy.add(id);
      void this.write(batch).finally(() => {
        this.inFlight--;
        for (const id of ids) this.busy.delete(id);
        this.flush();
      });
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    // The common message (no Twilio id, no files) goes in one statement with its batch; the rest one by one.
    const together = batch.filter((p) => batchable(p));
    const alone = batch.filter((p) => !batchable(p));
    if (together.length) {
      try {
        const results = await this.appendBatch(together);
        together.forEach((p, i) => {
          const r = results[i]!;
          if (r instanceof Error) p.reject(r);
          else p.resolve(r);
        });
      } catch {
        // One bad message (a vanished conversation, a race another node won) must not fail its neighbours.
        alone.unshift(...together);
      }
    }
    for (const p of alone) await this.appendAlone(p.input, p.attachmentIds).then(p.resolve, p.reject);
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
   * A batch in ONE statement (one round trip, atomic without begin/commit): messages already stored (retries)
   * are skipped, each conversation's row is updated once to reserve consecutive seqs (its row lock orders
   * writers, and is held to the commit, so seqs commit in order), and the new messages are inserted in arrival
   * order. Results come back in input order; retries resolve to the stored copy.
   */
  private async appendBatch(batch: Pending[]): Promise<(Appended | Error)[]> {
    // Each message gets its id here; a retry inside the same batch shares the first copy's.
    const ids: string[] = new Array(batch.length);
    const firstOfKey = new Map<string, number>();
    const rows: Record<string, unknown>[] = [];
    batch.forEach((p, i) => {
      const k = p.input.clientMessageId ? `${p.input.conversationId}|${p.input.clientMessageId}` : undefined;
      const first = k ? firstOfKey.get(k) : undefined;
      if (first !== undefined) {
        ids[i] = ids[first]!;
        return;
      }
      if (k) firstOfKey.set(k, i);
      const row = toJsonRow(p.input);
      ids[i] = row.id as string;
      rows.push(row);
    });
    const inserted = rowsOf<RawMessage>(
      await this.db.execute(sql`with input as (
          select * from json_populate_recordset(null::messages, ${JSON.stringify(rows)}::json) with ordinality as t
        ), fresh as (
          select i.* from input i
          where not exists (select 1 from messages m where m.conversation_id = i.conversation_id and m.client_message_id = i.client_message_id)
        ), counts as (
          select conversation_id, count(*)::int as n from fresh group by conversation_id
        ), bumped as (
          update conversations c set last_seq = c.last_seq + counts.n, updated_at = now()
          from counts where c.id = counts.conversation_id
          returning c.id, c.last_seq - counts.n as base
        )
        insert into messages (${sql.raw(INSERTED_COLUMNS)}, seq)
        select ${sql.raw(INSERTED_COLUMNS.split(', ').map((c) => `f.${c}`).join(', '))},
               b.base + row_number() over (partition by f.conversation_id order by f.ordinality)
        from fresh f join bumped b on b.id = f.conversation_id
        returning ${sql.raw(RETURNED_COLUMNS)}`),
    ).map(fromRaw);
    const byId = new Map(inserted.map((m) => [m.id, m]));
    const answered = new Set<string>();
    const results: (Appended | Error)[] = [];
    for (const [i, p] of batch.entries()) {
      const message = byId.get(ids[i]!);
      if (!message) {
        // A retry of a message stored before this batch: answer with the stored row. Anything else did not land.
        const existing = await this.findDuplicate(this.db, p.input);
        results.push(existing ? { message: existing, created: false } : new Error(`conversation ${p.input.conversationId} vanished`));
        continue;
      }
      // Only the first copy is "created": a message is broadcast once.
      results.push({ message, created: !answered.has(message.id) });
      answered.add(message.id);
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
