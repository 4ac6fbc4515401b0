import { and, asc, desc, eq, inArray, ne, or, sql, type SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { CaseStatus, ConversationStatus, InboxView, Priority } from '@casebridge/shared';
import { isUuid } from '@casebridge/shared';
import { rowsOf, type Db, type Tx } from '../../db/client.js';
import { calls, cases, channelIdentities, constituents, conversations, exchangeHandoffs, groups, messages, users } from '../../db/schema.js';

export type ConversationRow = typeof conversations.$inferSelect;
export type ConversationView = ConversationRow & {
  caseReference: string;
  caseStatus: CaseStatus;
  casePriority: Priority;
  caseTags: string[];
  caseTypeId: string | null;
  constituentName: string | null;
  constituentEmail: string | null;
  constituentPhone: string | null;
  textsTo: string | null;
  textOptedOut: boolean;
  /**
   * In a handoff to or from a partner agency (#10) that is being offered or was accepted: its public messages
   * may cross over. Offered counts too, so a message stored while the partner accepts is never skipped.
   */
  exchangeOpen: boolean;
  groupName: string;
  assigneeName: string | null;
  preview: string | null;
};

const assignee = alias(users, 'assignee');
const PREVIEW_CHARS = 140;

const viewColumns = {
  conversation: conversations,
  caseReference: cases.reference,
  caseStatus: cases.status,
  casePriority: cases.priority,
  caseTags: cases.tags,
  caseTypeId: cases.caseTypeId,
  constituentName: constituents.displayName,
  constituentEmail: constituents.email,
  constituentPhone: constituents.phone,
  groupName: groups.name,
  assigneeName: assignee.displayName,
  // The number public replies are texted to: the thread's own (SMS) or the one a web chat was continued on.
  textsTo: sql<string | null>`(select ci.address from ${channelIdentities} ci
    where ci.id = case when ${conversations.channel} = 'sms' then ${conversations.channelIdentityId} else ${conversations.textIdentityId} end)`,
  textOptedOut: sql<boolean>`coalesce((select ci.opted_out_at is not null from ${channelIdentities} ci
    where ci.id = case when ${conversations.channel} = 'sms' then ${conversations.channelIdentityId} else ${conversations.textIdentityId} end), false)`,
  // Read with the conversation so the send path needs no query of its own to know (most are never handed over).
  exchangeOpen: sql<boolean>`exists (select 1 from ${exchangeHandoffs} h where h.state in ('sending', 'offered', 'accepted')
    and (h.conversation_id = ${conversations.id} or h.case_id = ${conversations.caseId}))`,
  // The newest message, found through the (conversation_id, seq) unique index.
  preview: sql<string | null>`(select left(m.body, ${PREVIEW_CHARS}) from ${messages} m
    where m.conversation_id = ${conversations.id} order by m.seq desc limit 1)`,
};

type ViewRow = { conversation: ConversationRow } & Omit<ConversationView, keyof ConversationRow>;
function flatten({ conversation, ...rest }: ViewRow): ConversationView {
  return { ...conversation, ...rest };
}

/** Which conversations a staff member may see: `groupIds` null means the whole agency (admins). */
export interface StaffScope {
  agencyId: string;
  userId: string;
  groupIds: string[] | null;
}

export interface InboxFilter {
  view: InboxView;
  channel?: ConversationRow['channel'];
  priority?: Priority;
  groupId?: string;
  caseTypeId?: string;
  tag?: string;
  q?: string;
  cursor?: { at: string; id: string };
  limit: number;
}

const CLOSED_WINDOW_DAYS = 7;

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Lookups of single conversations outside a transaction share a query: at most this many run at once. */
const VIEW_QUERIES_IN_FLIGHT = 2;
const VIEW_BATCH = 500;

export class ConversationRepository {
  private readonly waiting = new Map<string, { resolve: (v: ConversationView | undefined) => void; reject: (e: unknown) => void }[]>();
  private inFlight = 0;

  constructor(private readonly db: Db) {}

  private view(tx: Tx | Db = this.db) {
    return tx
      .select(viewColumns)
      .from(conversations)
      .innerJoin(cases, eq(cases.id, conversations.caseId))
      .innerJoin(constituents, eq(constituents.id, conversations.constituentId))
      .innerJoin(groups, eq(groups.id, conversations.groupId))
      .leftJoin(assignee, eq(assignee.id, conversations.assigneeId));
  }

  private visible(s: StaffScope): SQL | undefined {
    const agency = eq(conversations.agencyId, s.agencyId);
    if (!s.groupIds) return agency;
    const mine = eq(conversations.assigneeId, s.userId);
    return and(agency, s.groupIds.length ? or(inArray(conversations.groupId, s.groupIds), mine) : mine);
  }

  private viewCondition(view: InboxView, userId: string): SQL {
    switch (view) {
      case 'mine':
        return and(eq(conversations.assigneeId, userId), ne(conversations.status, 'ended'))!;
      case 'queue':
        return eq(conversations.status, 'queued');
      case 'open':
        return ne(conversations.status, 'ended');
      case 'closed':
        return and(
          eq(conversations.status, 'ended'),
          sql`${conversations.endedAt} > now() - make_interval(days => ${CLOSED_WINDOW_DAYS})`,
        )!;
    }
  }

  /**
   * One page of an inbox view. The queue is first-come first-served (oldest first); every other view shows
   * the most recently changed first. Keyset pagination: the cursor is the last row's sort key.
   */
  async inbox(scope: StaffScope, f: InboxFilter): Promise<ConversationView[]> {
    const where: (SQL | undefined)[] = [this.visible(scope), this.viewCondition(f.view, scope.userId)];
    if (f.channel) where.push(eq(conversations.channel, f.channel));
    if (f.priority) where.push(eq(cases.priority, f.priority));
    if (f.groupId) where.push(eq(conversations.groupId, f.groupId));
    if (f.tag) where.push(sql`${f.tag} = any(${cases.tags})`);
    if (f.caseTypeId) where.push(eq(cases.caseTypeId, f.caseTypeId));
    if (f.q) {
      const like = `%${escapeLike(f.q)}%`;
      where.push(
        or(
          sql`${constituents.displayName} ilike ${like}`,
          sql`${constituents.email} ilike ${like}`,
          sql`${constituents.phone} ilike ${like}`,
          sql`${cases.reference} ilike ${like}`,
          sql`exists (select 1 from ${messages} m where m.conversation_id = ${conversations.id} and m.body ilike ${like})`,
        ),
      );
    }
    const oldestFirst = f.view === 'queue';
    const key = oldestFirst ? conversations.createdAt : conversations.updatedAt;
    if (f.cursor) {
      where.push(
        oldestFirst
          ? sql`(${key}, ${conversations.id}) > (${f.cursor.at}::timestamptz, ${f.cursor.id}::uuid)`
          : sql`(${key}, ${conversations.id}) < (${f.cursor.at}::timestamptz, ${f.cursor.id}::uuid)`,
      );
    }
    const order = oldestFirst ? [asc(key), asc(conversations.id)] : [desc(key), desc(conversations.id)];
    // The page is chosen on the conversations alone (joined to cases and constituents only when a filter looks
    // at them); only its rows are then joined for display. Joining every waiting conversation before picking
    // fifty made the first screen of a 10,000-case agency three times slower.
    let page = this.db.select({ id: conversations.id }).from(conversations).$dynamic();
    if (f.priority || f.tag || f.caseTypeId || f.q) page = page.innerJoin(cases, eq(cases.id, conversations.caseId));
    if (f.q) page = page.innerJoin(constituents, eq(constituents.id, conversations.constituentId));
    const rows = await this.view()
      .where(inArray(conversations.id, page.where(and(...where)).orderBy(...order).limit(f.limit)))
      .orderBy(...order);
    return rows.map(flatten);
  }

  /** How many conversations each inbox view holds for this staff member. */
  async inboxCounts(scope: StaffScope): Promise<Record<InboxView, number>> {
    const count = (v: InboxView) => sql<number>`count(*) filter (where ${this.viewCondition(v, scope.userId)})::int`;
    const [row] = await this.db
      .select({ mine: count('mine'), queue: count('queue'), open: count('open'), closed: count('closed') })
      .from(conversations)
      .where(this.visible(scope));
    return { mine: row?.mine ?? 0, queue: row?.queue ?? 0, open: row?.open ?? 0, closed: row?.closed ?? 0 };
  }

  /**
   * Moves a conversation to another owner or queue, guarded by the version the caller saw:
   * a conversation changed meanwhile (claimed, ended, transferred) is not overwritten.
   */
  async transfer(
    tx: Tx,
    id: string,
    expectedVersion: number,
    to: { groupId: string; assigneeId: string | null },
  ): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .update(conversations)
      .set({
        groupId: to.groupId,
        assigneeId: to.assigneeId,
        status: to.assigneeId ? 'active' : 'queued',
        // A colleague's hand-over counts as accepted; back in a queue it waits to be routed or taken again.
        assignedBy: to.assigneeId ? 'agent' : null,
        claimedAt: to.assigneeId ? sql`coalesce(${conversations.claimedAt}, now())` : conversations.claimedAt,
        version: sql`${conversations.version} + 1`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(conversations.id, id), eq(conversations.version, expectedVersion), ne(conversations.status, 'ended')))
      .returning();
    return row;
  }

  /** Moves a conversation to another case (an agent found the case it belongs to). */
  async moveToCase(tx: Tx, id: string, caseId: string): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .update(conversations)
      .set({ caseId, version: sql`${conversations.version} + 1`, updatedAt: sql`now()` })
      .where(eq(conversations.id, id))
      .returning();
    return row;
  }

  /** The case's conversation that is still open, if any (the newest). */
  async openForCase(caseId: string): Promise<ConversationView | undefined> {
    const [row] = await this.view()
      .where(and(eq(conversations.caseId, caseId), ne(conversations.status, 'ended')))
      .orderBy(desc(conversations.createdAt))
      .limit(1);
    return row && flatten(row);
  }

  /** Open conversations each of these users holds now. */
  async activeCountByAssignee(agencyId: string): Promise<Map<string, number>> {
    const rows = await this.db
      .select({ userId: conversations.assigneeId, n: sql<number>`count(*)::int` })
      .from(conversations)
      .where(and(eq(conversations.agencyId, agencyId), eq(conversations.status, 'active')))
      .groupBy(conversations.assigneeId);
    return new Map(rows.flatMap((r) => (r.userId ? [[r.userId, Number(r.n)] as const] : [])));
  }

  /**
   * One conversation as the console and the send path see it. Outside a transaction, lookups that arrive while
   * earlier ones are in flight are answered together by the next query (one `in (…)` instead of one query per
   * message): never older than a query of its own would have been, since that query starts after the request.
   */
  async findView(id: string, tx: Tx | Db = this.db): Promise<ConversationView | undefined> {
    if (tx !== this.db) {
      const [row] = await this.view(tx).where(eq(conversations.id, id));
      return row && flatten(row);
    }
    // One malformed id must not fail the lookups it would share a query with.
    if (!isUuid(id)) return undefined;
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(id);
      if (list) list.push({ resolve, reject });
      else this.waiting.set(id, [{ resolve, reject }]);
      this.loadViews();
    });
  }

  // Prepared once (named, so PostgreSQL plans it once per connection): the send path looks a conversation up
  // for every message, and planning this join cost more than running it.
  private byIds?: ReturnType<ConversationRepository['prepareViewsById']>;
  private viewsById() {
    return (this.byIds ??= this.prepareViewsById());
  }
  private prepareViewsById() {
    return this.view()
      .where(sql`${conversations.id} = any(${sql.placeholder('ids')}::uuid[])`)
      .prepare('conversation_views_by_id');
  }

  private loadViews(): void {
    if (this.inFlight >= VIEW_QUERIES_IN_FLIGHT || this.waiting.size === 0) return;
    const ids = [...this.waiting.keys()].slice(0, VIEW_BATCH);
    const asked = ids.map((id) => [id, this.waiting.get(id)!] as const);
    for (const id of ids) this.waiting.delete(id);
    this.inFlight++;
    this.viewsById()
      .execute({ ids: `{${ids.join(',')}}` })
      .then(
        (rows) => {
          const byId = new Map(rows.map((r) => [r.conversation.id, flatten(r)]));
          for (const [id, callers] of asked) for (const c of callers) c.resolve(byId.get(id));
        },
        (err: unknown) => {
          for (const [, callers] of asked) for (const c of callers) c.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.loadViews();
      });
  }

  async findOpenByIdentity(tx: Tx, channelIdentityId: string): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .select()
      .from(conversations)
      .where(and(eq(conversations.channelIdentityId, channelIdentityId), ne(conversations.status, 'ended')));
    return row;
  }

  /** Whether this address (a phone number) has an open conversation of its own or a chat continued by text. */
  async hasOpenForAddress(agencyId: string, channel: 'sms' | 'voice', address: string): Promise<boolean> {
    const rows = rowsOf<{ one: number }>(
      await this.db.execute(sql`select 1 as one from ${channelIdentities} ci
        join ${conversations} c on (c.channel_identity_id = ci.id or c.text_identity_id = ci.id) and c.status <> 'ended'
        where ci.agency_id = ${agencyId} and ci.channel = ${channel} and ci.address = ${address} limit 1`),
    );
    return rows.length > 0;
  }

  /** The open web chat this phone number was asked to continue, by text. */
  async findOpenByTextIdentity(tx: Tx, channelIdentityId: string): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .select()
      .from(conversations)
      .where(and(eq(conversations.textIdentityId, channelIdentityId), ne(conversations.status, 'ended')))
      .orderBy(desc(conversations.createdAt))
      .limit(1);
    return row;
  }

  /** Sets (or clears) the number a web chat also goes to by text. */
  async setTextIdentity(id: string, identityId: string | null): Promise<void> {
    await this.db.update(conversations).set({ textIdentityId: identityId, updatedAt: sql`now()` }).where(eq(conversations.id, id));
  }

  /** Conversations started on one channel identity in the last `windowSec` seconds. */
  async countRecentByIdentity(tx: Tx, channelIdentityId: string, windowSec: number): Promise<number> {
    const [row] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(conversations)
      .where(
        and(
          eq(conversations.channelIdentityId, channelIdentityId),
          sql`${conversations.createdAt} > now() - make_interval(secs => ${windowSec})`,
        ),
      );
    return Number(row?.n ?? 0);
  }

  async create(
    tx: Tx,
    input: {
      agencyId: string;
      constituentId: string;
      channelIdentityId: string;
      channel: ConversationRow['channel'];
      groupId: string;
      caseId: string;
      language: ConversationRow['language'];
      offline?: boolean;
    },
  ): Promise<ConversationRow> {
    const [row] = await tx.insert(conversations).values(input).returning();
    return row!;
  }

  /** One guarded statement: of two agents taking the same conversation, exactly one gets a row back. */
  async claim(id: string, agentId: string, tx: Tx | Db = this.db, by: 'agent' | 'routing' = 'agent'): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .update(conversations)
      .set({
        status: 'active',
        assigneeId: agentId,
        assignedBy: by,
        claimedAt: sql`now()`,
        version: sql`${conversations.version} + 1`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(conversations.id, id), eq(conversations.status, 'queued')))
      .returning();
    return row;
  }

  /** A constituent's conversations that are not ended, locked until the caller's transaction ends. */
  async openForConstituentLocked(tx: Tx, constituentId: string): Promise<ConversationRow[]> {
    return tx
      .select()
      .from(conversations)
      .where(and(eq(conversations.constituentId, constituentId), ne(conversations.status, 'ended')))
      .orderBy(asc(conversations.id))
      .for('update');
  }

  async end(id: string, tx: Tx | Db = this.db): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .update(conversations)
      .set({ status: 'ended', endedAt: sql`now()`, version: sql`${conversations.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(conversations.id, id), ne(conversations.status, 'ended')))
      .returning();
    return row;
  }

  /** Moves one side's receipt cursors forward (never back, never past the last message). */
  async advanceReceipts(
    id: string,
    side: 'agent' | 'constituent',
    delivered: number | undefined,
    read: number | undefined,
  ): Promise<{ deliveredSeq: number; readSeq: number } | undefined> {
    const d = side === 'agent' ? conversations.agentDeliveredSeq : conversations.constituentDeliveredSeq;
    const r = side === 'agent' ? conversations.agentReadSeq : conversations.constituentReadSeq;
    // Reading implies receiving: the delivered cursor is at least the read one.
    const wantDelivered = Math.max(delivered ?? 0, read ?? 0);
    const wantRead = read ?? 0;
    const set =
      side === 'agent'
        ? {
            agentDeliveredSeq: sql`least(greatest(${d}, ${wantDelivered}), ${conversations.lastSeq})`,
            agentReadSeq: sql`least(greatest(${r}, ${wantRead}), ${conversations.lastSeq})`,
          }
        : {
            constituentDeliveredSeq: sql`least(greatest(${d}, ${wantDelivered}), ${conversations.lastSeq})`,
            constituentReadSeq: sql`least(greatest(${r}, ${wantRead}), ${conversations.lastSeq})`,
          };
    const [row] = await this.db
      .update(conversations)
      .set(set)
      .where(eq(conversations.id, id))
      .returning({ deliveredSeq: d, readSeq: r });
    return row;
  }

  /**
   * Puts an active conversation back in its group's queue, unassigned; it keeps its arrival time, so its place
   * in line. Only while it is still with `fromAssignee` (a reply or a transfer in between wins).
   */
  async returnToQueue(tx: Tx, id: string, fromAssignee: string): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .update(conversations)
      .set({
        status: 'queued',
        assigneeId: null,
        assignedBy: null,
        claimedAt: null,
        version: sql`${conversations.version} + 1`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(conversations.id, id), eq(conversations.status, 'active'), eq(conversations.assigneeId, fromAssignee)))
      .returning();
    return row;
  }

  /** Active conversations no agent has answered in public since they were assigned. */
  private unanswered() {
    // A call is answered by picking up, not by writing: an answered call is never handed back.
    return sql`not exists (select 1 from ${messages} m where m.conversation_id = ${conversations.id}
      and m.author_kind = 'agent' and m.visibility = 'public' and m.created_at >= ${conversations.claimedAt})
      and not exists (select 1 from ${calls} k where k.conversation_id = ${conversations.id} and k.answered_at is not null)`;
  }

  /** What an agent holds but has not answered yet (it goes back to the queue if they go offline). */
  async unansweredOf(userId: string): Promise<ConversationRow[]> {
    return this.db
      .select()
      .from(conversations)
      .where(and(eq(conversations.assigneeId, userId), eq(conversations.status, 'active'), this.unanswered()));
  }

  /** Routed conversations their agent has not answered within the group's accept time. */
  async unacceptedBefore(now: string): Promise<ConversationRow[]> {
    return this.db
      .select({ c: conversations })
      .from(conversations)
      .innerJoin(groups, eq(groups.id, conversations.groupId))
      .where(
        and(
          eq(conversations.status, 'active'),
          eq(conversations.assignedBy, 'routing'),
          sql`${conversations.claimedAt} + make_interval(secs => ${groups.acceptSeconds}) <= ${now}::timestamptz`,
          this.unanswered(),
        ),
      )
      .limit(200)
      .then((rows) => rows.map((r) => r.c));
  }

  /** The queued conversations of a group, first in line first. */
  async queueOf(groupId: string): Promise<{ id: string; constituentId: string }[]> {
    return this.db
      .select({ id: conversations.id, constituentId: conversations.constituentId })
      .from(conversations)
      .where(and(eq(conversations.groupId, groupId), eq(conversations.status, 'queued')))
      .orderBy(conversations.createdAt, conversations.id);
  }

  /** Mean seconds from arrival to being taken, over a group's most recent claims (null if none yet). */
  async recentMeanWaitSeconds(groupId: string, sample: number): Promise<number | null> {
    const recent = this.db
      .select({
        wait: sql<number>`extract(epoch from (${conversations.claimedAt} - ${conversations.createdAt}))`.as('wait'),
      })
      .from(conversations)
      .where(and(eq(conversations.groupId, groupId), sql`${conversations.claimedAt} is not null`))
      .orderBy(desc(conversations.claimedAt))
      .limit(sample)
      .as('recent');
    const [row] = await this.db.select({ mean: sql<number | null>`avg(${recent.wait})` }).from(recent);
    return row?.mean == null ? null : Number(row.mean);
  }

  async rate(id: string, score: number, comment: string | null, tx: Tx | Db = this.db): Promise<boolean> {
    const rows = await tx
      .update(conversations)
      .set({ ratingScore: score, ratingComment: comment })
      .where(and(eq(conversations.id, id), eq(conversations.status, 'ended'), sql`${conversations.ratingScore} is null`))
      .returning({ id: conversations.id });
    return rows.length === 1;
  }

  /** Staff lists by conversation status, most recently changed first. */
  async listForStaff(scope: StaffScope, status: ConversationStatus | undefined, limit: number): Promise<ConversationView[]> {
    const rows = await this.view()
      .where(and(this.visible(scope), status ? eq(conversations.status, status) : undefined))
      .orderBy(desc(conversations.updatedAt))
      .limit(limit);
    return rows.map(flatten);
  }

  async listForConstituent(constituentId: string): Promise<ConversationView[]> {
    const rows = await this.view()
      .where(eq(conversations.constituentId, constituentId))
      .orderBy(desc(conversations.createdAt))
      .limit(50);
    return rows.map(flatten);
  }
}
