import { and, desc, eq, inArray, isNull, ne, or, sql } from 'drizzle-orm';
import type { CaseStatus, Priority } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { caseCounters, caseEvents, caseLinks, caseSlas, caseTasks, caseTypes, cases, constituents, conversations, groups, users } from '../../db/schema.js';

export type CaseRow = typeof cases.$inferSelect;
export type CaseChange = Partial<
  Pick<CaseRow, 'status' | 'priority' | 'tags' | 'caseTypeId' | 'customFields' | 'stage' | 'awaitingRequest' | 'resolvedAt'>
>;

export class CaseRepository {
  constructor(
    private readonly db: Db,
    private readonly opts: { reserveOutsideTransactions?: boolean } = {},
  ) {}

  /** Next reference number for the agency and year, e.g. GEN-2026-000123; the counter row serialises writers. */
  /**
   * A reference for a case about to be opened, taken in its own short statement before the intake's
   * transaction (PostgreSQL only). Inside the transaction the counter row stays locked until the commit, which
   * lets one agency open only one case at a time and starves the pool under a surge. A number taken for an
   * intake that then fails is skipped, never reused. Undefined on PGlite (one connection: nothing to contend).
   */
  async reserveReference(agencyId: string, prefix: string, year: number): Promise<string | undefined> {
    if (!this.opts.reserveOutsideTransactions) return undefined;
    return this.nextReference(this.db, agencyId, prefix, year);
  }

  async nextReference(tx: Tx | Db, agencyId: string, prefix: string, year: number): Promise<string> {
    const [row] = await tx
      .insert(caseCounters)
      .values({ agencyId, year, lastNumber: 1 })
      .onConflictDoUpdate({
        target: [caseCounters.agencyId, caseCounters.year],
        set: { lastNumber: sql`${caseCounters.lastNumber} + 1` },
      })
      .returning({ n: caseCounters.lastNumber });
    return `${prefix}-${year}-${String(row!.n).padStart(6, '0')}`;
  }

  async create(
    tx: Tx,
    input: {
      agencyId: string;
      reference: string;
      title: string;
      constituentId: string;
      groupId: string | null;
      caseTypeId?: string | null;
      priority?: Priority;
      customFields?: Record<string, unknown>;
    },
  ): Promise<CaseRow> {
    const [row] = await tx.insert(cases).values(input).returning();
    return row!;
  }

  /** A case opened by hand: open and assigned from the start. */
  async createManual(
    tx: Tx,
    input: {
      agencyId: string;
      reference: string;
      title: string;
      constituentId: string | null;
      groupId: string | null;
      assigneeId: string;
      caseTypeId: string | null;
      priority: Priority;
      customFields: Record<string, unknown>;
    },
  ): Promise<CaseRow> {
    const [row] = await tx.insert(cases).values({ ...input, status: 'open' }).returning();
    return row!;
  }

  async addEvent(
    tx: Tx | Db,
    input: {
      caseId: string;
      kind: string;
      actorKind: 'agent' | 'constituent' | 'system';
      actorUserId?: string | null;
      conversationId?: string | null;
      data?: Record<string, unknown>;
    },
  ): Promise<void> {
    await tx.insert(caseEvents).values({ ...input, data: input.data ?? {} });
  }

  async assign(tx: Tx | Db, caseId: string, assigneeId: string): Promise<void> {
    await tx
      .update(cases)
      .set({
        assigneeId,
        status: sql`case when ${cases.status} = 'new' then 'open' else ${cases.status} end`,
        version: sql`${cases.version} + 1`,
        updatedAt: sql`now()`,
      })
      .where(eq(cases.id, caseId));
  }

  /** Has this constituent had any case with the agency (a returning constituent, for routing)? */
  async hasCases(agencyId: string, constituentId: string): Promise<boolean> {
    const [row] = await this.db
      .select({ id: cases.id })
      .from(cases)
      .where(and(eq(cases.agencyId, agencyId), eq(cases.constituentId, constituentId)))
      .limit(1);
    return Boolean(row);
  }

  /** Work given back to the queue is nobody's until someone takes it again. */
  async unassign(tx: Tx, caseId: string, fromUserId: string): Promise<void> {
    await tx
      .update(cases)
      .set({ assigneeId: null, version: sql`${cases.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(cases.id, caseId), eq(cases.assigneeId, fromUserId)));
  }

  /** A transfer moves the case with its conversation. */
  async reassign(tx: Tx, caseId: string, to: { groupId: string; assigneeId: string | null }): Promise<void> {
    await tx
      .update(cases)
      .set({ ...to, version: sql`${cases.version} + 1`, updatedAt: sql`now()` })
      .where(eq(cases.id, caseId));
  }

  async findById(caseId: string, tx: Tx | Db = this.db): Promise<CaseRow | undefined> {
    const [row] = await tx.select().from(cases).where(eq(cases.id, caseId));
    return row;
  }

  async names(c: CaseRow): Promise<{ groupName: string | null; assigneeName: string | null }> {
    const [g] = c.groupId ? await this.db.select({ name: groups.name }).from(groups).where(eq(groups.id, c.groupId)) : [];
    const [u] = c.assigneeId
      ? await this.db.select({ name: users.displayName }).from(users).where(eq(users.id, c.assigneeId))
      : [];
    return { groupName: g?.name ?? null, assigneeName: u?.name ?? null };
  }

  async constituentOf(c: CaseRow) {
    if (!c.constituentId) return undefined;
    const [person] = await this.db.select().from(constituents).where(eq(constituents.id, c.constituentId));
    if (!person) return undefined;
    const otherCases = await this.db
      .select({ id: cases.id, reference: cases.reference, title: cases.title, status: cases.status })
      .from(cases)
      .where(and(eq(cases.constituentId, person.id), eq(cases.agencyId, c.agencyId), ne(cases.id, c.id)))
      .orderBy(desc(cases.createdAt))
      .limit(20);
    const contacts = await this.db
      .select({
        id: conversations.id,
        channel: conversations.channel,
        status: conversations.status,
        caseReference: cases.reference,
        createdAt: conversations.createdAt,
      })
      .from(conversations)
      .innerJoin(cases, eq(cases.id, conversations.caseId))
      .where(and(eq(conversations.constituentId, person.id), eq(conversations.agencyId, c.agencyId)))
      .orderBy(desc(conversations.createdAt))
      .limit(20);
    return { person, otherCases, conversations: contacts };
  }

  /** The case's timeline events, oldest first, with the acting staff member's name. */
  async timeline(caseId: string) {
    return this.db
      .select({ event: caseEvents, actorName: users.displayName })
      .from(caseEvents)
      .leftJoin(users, eq(users.id, caseEvents.actorUserId))
      .where(eq(caseEvents.caseId, caseId))
      .orderBy(caseEvents.createdAt, caseEvents.id);
  }

  /** Resolved cases whose reopen window has passed: they close. */
  async resolvedBefore(now: string): Promise<CaseRow[]> {
    const rows = await this.db
      .select({ kase: cases })
      .from(cases)
      .leftJoin(caseTypes, eq(caseTypes.id, cases.caseTypeId))
      .where(
        and(
          eq(cases.status, 'resolved'),
          sql`${cases.resolvedAt} + make_interval(days => coalesce(${caseTypes.reopenDays}, 14)) <= ${now}::timestamptz`,
        ),
      )
      .limit(500);
    return rows.map((r) => r.kase);
  }

  async findByReference(agencyId: string, reference: string): Promise<CaseRow | undefined> {
    const [row] = await this.db
      .select()
      .from(cases)
      .where(and(eq(cases.agencyId, agencyId), eq(cases.reference, reference)));
    return row;
  }

  async links(caseId: string) {
    return this.db
      .select({ id: cases.id, reference: cases.reference, title: cases.title, status: cases.status })
      .from(caseLinks)
      .innerJoin(cases, eq(cases.id, caseLinks.linkedCaseId))
      .where(eq(caseLinks.caseId, caseId))
      .orderBy(cases.reference);
  }

  /** Links two cases both ways; false when they were already linked. */
  async link(tx: Tx, a: string, b: string, by: string): Promise<boolean> {
    const rows = await tx
      .insert(caseLinks)
      .values([
        { caseId: a, linkedCaseId: b, createdBy: by },
        { caseId: b, linkedCaseId: a, createdBy: by },
      ])
      .onConflictDoNothing()
      .returning({ caseId: caseLinks.caseId });
    return rows.length > 0;
  }

  async unlink(tx: Tx, a: string, b: string): Promise<boolean> {
    const rows = await tx
      .delete(caseLinks)
      .where(
        sql`(${caseLinks.caseId} = ${a} and ${caseLinks.linkedCaseId} = ${b}) or (${caseLinks.caseId} = ${b} and ${caseLinks.linkedCaseId} = ${a})`,
      )
      .returning({ caseId: caseLinks.caseId });
    return rows.length > 0;
  }

  /** Changes status and/or priority if the case is still at `version`; undefined when someone changed it first. */
  async update(
    tx: Tx,
    caseId: string,
    version: number,
    change: CaseChange,
  ): Promise<CaseRow | undefined> {
    const [row] = await tx
      .update(cases)
      .set({ ...change, version: sql`${cases.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(cases.id, caseId), eq(cases.version, version)))
      .returning();
    return row;
  }

  /** Open cases a staff member owns, most urgent SLA first, with their soonest running SLA due time. */
  async openAssignedTo(userId: string) {
    const due = sql<string | null>`(select min(s.due_at) from ${caseSlas} s where s.case_id = ${cases.id} and s.met_at is null)`;
    return this.db
      .select({
        kase: cases,
        slaDueAt: due,
        slaBreached: sql<boolean>`exists (select 1 from ${caseSlas} s where s.case_id = ${cases.id} and s.met_at is null and s.breached_at is not null)`,
      })
      .from(cases)
      .where(and(eq(cases.assigneeId, userId), inArray(cases.status, ['new', 'open', 'awaiting_info'])))
      .orderBy(sql`${due} nulls last`, desc(cases.updatedAt))
      .limit(200);
  }

  /** Unfinished tasks for a staff member, or for one of their groups with nobody named; soonest due first. */
  async openTasksFor(userId: string, groupIds: string[]) {
    return this.db
      .select({ task: caseTasks, reference: cases.reference })
      .from(caseTasks)
      .innerJoin(cases, eq(cases.id, caseTasks.caseId))
      .where(
        and(
          isNull(caseTasks.doneAt),
          inArray(cases.status, ['new', 'open', 'awaiting_info']),
          groupIds.length
            ? or(eq(caseTasks.assigneeId, userId), and(isNull(caseTasks.assigneeId), inArray(caseTasks.groupId, groupIds)))
            : eq(caseTasks.assigneeId, userId),
        ),
      )
      .orderBy(sql`${caseTasks.dueAt} nulls last`, caseTasks.createdAt)
      .limit(200);
  }

  /**
   * Moves a duplicate's conversations, timeline and hand-added tasks to the survivor, and closes the duplicate
   * pointing at it. Its unfinished playbook steps are dropped: the survivor has its own.
   */
  async merge(tx: Tx, duplicate: CaseRow, survivor: CaseRow): Promise<CaseRow | undefined> {
    const [closed] = await tx
      .update(cases)
      .set({ status: 'closed', mergedIntoId: survivor.id, version: sql`${cases.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(cases.id, duplicate.id), eq(cases.version, duplicate.version), isNull(cases.mergedIntoId)))
      .returning();
    if (!closed) return undefined;
    await tx.update(conversations).set({ caseId: survivor.id }).where(eq(conversations.caseId, duplicate.id));
    await tx.update(caseEvents).set({ caseId: survivor.id }).where(eq(caseEvents.caseId, duplicate.id));
    await tx
      .update(caseTasks)
      .set({ caseId: survivor.id })
      .where(and(eq(caseTasks.caseId, duplicate.id), isNull(caseTasks.templateKey)));
    await tx.delete(caseTasks).where(and(eq(caseTasks.caseId, duplicate.id), isNull(caseTasks.doneAt)));
    const tags = [...new Set([...survivor.tags, ...duplicate.tags])].sort();
    await tx
      .update(cases)
      .set({ tags, version: sql`${cases.version} + 1`, updatedAt: sql`now()` })
      .where(eq(cases.id, survivor.id));
    return closed;
  }

  async referenceOf(caseId: string): Promise<{ id: string; reference: string } | undefined> {
    const [row] = await this.db.select({ id: cases.id, reference: cases.reference }).from(cases).where(eq(cases.id, caseId));
    return row;
  }
}
