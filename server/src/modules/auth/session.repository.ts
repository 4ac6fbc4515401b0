import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { sessions, users } from '../../db/schema.js';

export type SessionRow = typeof sessions.$inferSelect;
export type UserRow = typeof users.$inferSelect;

export class SessionRepository {
  constructor(private readonly db: Db) {}

  async create(input: { userId: string; tokenHash: string; csrfToken: string; expiresAt: Date }): Promise<SessionRow> {
    const [row] = await this.db
      .insert(sessions)
      .values({ ...input, expiresAt: input.expiresAt.toISOString() })
      .returning();
    return row!;
  }

  /** The live session for a token hash, with its user; undefined if none or revoked. */
  async findActive(tokenHash: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const [row] = await this.db
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.tokenHash, tokenHash), isNull(sessions.revokedAt)));
    return row;
  }

  async findById(id: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const [row] = await this.db
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(eq(sessions.id, id));
    return row;
  }

  async touch(id: string): Promise<void> {
    await this.db.update(sessions).set({ lastSeenAt: sql`now()` }).where(eq(sessions.id, id));
  }

  async revoke(id: string): Promise<void> {
    await this.db
      .update(sessions)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)));
  }

  async revokeAllForUser(userId: string): Promise<void> {
    await this.db
      .update(sessions)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
  }
}
