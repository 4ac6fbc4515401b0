import { and, desc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { portalCodes } from '../../db/schema.js';

export type PortalCodeRow = typeof portalCodes.$inferSelect;

/** One-time portal codes: only hashes are stored; a new code replaces the ones before it. */
export class PortalCodeRepository {
  constructor(private readonly db: Db) {}

  async create(caseId: string, codeHash: string, expiresAt: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      // Only the newest code works: asking again never leaves two valid codes about.
      await tx.update(portalCodes).set({ usedAt: sql`now()` }).where(and(eq(portalCodes.caseId, caseId), isNull(portalCodes.usedAt)));
      await tx.insert(portalCodes).values({ caseId, codeHash, expiresAt });
    });
  }

  /** Codes asked for this case since `since` (to stop anyone flooding a constituent's inbox). */
  async countSince(caseId: string, since: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(portalCodes)
      .where(and(eq(portalCodes.caseId, caseId), gt(portalCodes.createdAt, since)));
    return row?.n ?? 0;
  }

  async latestUnused(caseId: string): Promise<PortalCodeRow | undefined> {
    const [row] = await this.db
      .select()
      .from(portalCodes)
      .where(and(eq(portalCodes.caseId, caseId), isNull(portalCodes.usedAt)))
      .orderBy(desc(portalCodes.createdAt))
      .limit(1);
    return row;
  }

  /** Counts a wrong try; returns the tries so far. */
  async failedAttempt(id: string): Promise<number> {
    const [row] = await this.db
      .update(portalCodes)
      .set({ attempts: sql`${portalCodes.attempts} + 1` })
      .where(eq(portalCodes.id, id))
      .returning({ attempts: portalCodes.attempts });
    return row?.attempts ?? 0;
  }

  /** Uses the code; false if someone used it first (a double submit signs in once). */
  async use(id: string): Promise<boolean> {
    const rows = await this.db
      .update(portalCodes)
      .set({ usedAt: sql`now()` })
      .where(and(eq(portalCodes.id, id), isNull(portalCodes.usedAt)))
      .returning({ id: portalCodes.id });
    return rows.length > 0;
  }
}
