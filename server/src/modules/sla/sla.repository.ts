import { and, eq, isNull, lte, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { caseSlas, cases } from '../../db/schema.js';

export type SlaRow = typeof caseSlas.$inferSelect;
export type Metric = SlaRow['metric'];

export class SlaRepository {
  constructor(private readonly db: Db) {}

  async listForCase(caseId: string, tx: Tx | Db = this.db): Promise<SlaRow[]> {
    return tx.select().from(caseSlas).where(eq(caseSlas.caseId, caseId)).orderBy(caseSlas.metric);
  }

  /** Sets a clock's target (a new case, or a changed type or priority); alerts already sent stay recorded. */
  async upsert(tx: Tx, row: { caseId: string; metric: Metric; targetMinutes: number; startedAt: string; warnAt: string; dueAt: string; metAt?: string | null }): Promise<void> {
    await tx
      .insert(caseSlas)
      .values(row)
      .onConflictDoUpdate({
        target: [caseSlas.caseId, caseSlas.metric],
        set: { targetMinutes: row.targetMinutes, warnAt: row.warnAt, dueAt: row.dueAt },
      });
  }

  async removeForCase(tx: Tx, caseId: string): Promise<void> {
    await tx.delete(caseSlas).where(eq(caseSlas.caseId, caseId));
  }

  async pause(tx: Tx, caseId: string, at: string): Promise<void> {
    await tx
      .update(caseSlas)
      .set({ pausedAt: at })
      .where(and(eq(caseSlas.caseId, caseId), isNull(caseSlas.pausedAt), isNull(caseSlas.metAt)));
  }

  async paused(tx: Tx, caseId: string): Promise<SlaRow[]> {
    return tx
      .select()
      .from(caseSlas)
      .where(and(eq(caseSlas.caseId, caseId), sql`${caseSlas.pausedAt} is not null`));
  }

  async resume(tx: Tx, caseId: string, metric: Metric, warnAt: string, dueAt: string): Promise<void> {
    await tx
      .update(caseSlas)
      .set({ pausedAt: null, warnAt, dueAt })
      .where(and(eq(caseSlas.caseId, caseId), eq(caseSlas.metric, metric)));
  }

  /** Stops a clock; true the first time only. */
  async meet(tx: Tx | Db, caseId: string, metric: Metric, at: string): Promise<boolean> {
    const rows = await tx
      .update(caseSlas)
      .set({ metAt: at, pausedAt: null })
      .where(and(eq(caseSlas.caseId, caseId), eq(caseSlas.metric, metric), isNull(caseSlas.metAt)))
      .returning({ caseId: caseSlas.caseId });
    return rows.length > 0;
  }

  /** A reopened case is being worked again: its resolution clock runs on from where it was. */
  async unmeet(tx: Tx, caseId: string, metric: Metric): Promise<void> {
    await tx
      .update(caseSlas)
      .set({ metAt: null })
      .where(and(eq(caseSlas.caseId, caseId), eq(caseSlas.metric, metric)));
  }

  /**
   * Claims the clocks that crossed their warning (or due) instant. The conditional UPDATE is the lock: on any
   * number of nodes, each alert is claimed by exactly one of them.
   */
  async claimDue(level: 'warning' | 'breach', now: string) {
    const stamp = level === 'warning' ? caseSlas.warnedAt : caseSlas.breachedAt;
    const at = level === 'warning' ? caseSlas.warnAt : caseSlas.dueAt;
    const claimed = await this.db
      .update(caseSlas)
      .set(level === 'warning' ? { warnedAt: now } : { breachedAt: now, warnedAt: sql`coalesce(${caseSlas.warnedAt}, ${now})` })
      .where(and(isNull(stamp), isNull(caseSlas.metAt), isNull(caseSlas.pausedAt), lte(at, now)))
      .returning();
    if (!claimed.length) return [];
    const ids = [...new Set(claimed.map((c) => c.caseId))];
    const rows = await this.db
      .select({
        id: cases.id,
        agencyId: cases.agencyId,
        groupId: cases.groupId,
        assigneeId: cases.assigneeId,
        reference: cases.reference,
        title: cases.title,
        status: cases.status,
        priority: cases.priority,
        tags: cases.tags,
        version: cases.version,
      })
      .from(cases)
      .where(sql`${cases.id} in ${ids}`);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return claimed.flatMap((c) => {
      const kase = byId.get(c.caseId);
      return kase ? [{ clock: c, kase }] : [];
    });
  }
}
