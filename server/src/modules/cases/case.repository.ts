import { eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { caseCounters, caseEvents, cases } from '../../db/schema.js';

export type CaseRow = typeof cases.$inferSelect;

export class CaseRepository {
  constructor(private readonly db: Db) {}

  /** Next reference number for the agency and year, e.g. GEN-2026-000123; the counter row serialises writers. */
  async nextReference(tx: Tx, agencyId: string, prefix: string, year: number): Promise<string> {
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
    input: { agencyId: string; reference: string; title: string; constituentId: string; groupId: string },
  ): Promise<CaseRow> {
    const [row] = await tx.insert(cases).values(input).returning();
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

  async timeline(caseId: string) {
    return this.db.select().from(caseEvents).where(eq(caseEvents.caseId, caseId)).orderBy(caseEvents.createdAt);
  }
}
