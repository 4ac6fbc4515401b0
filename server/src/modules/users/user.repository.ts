import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { agencies, groupMemberships, groups, users } from '../../db/schema.js';

export type UserRow = typeof users.$inferSelect;

export class UserRepository {
  constructor(private readonly db: Db) {}

  async findByEmail(email: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.email, email.toLowerCase()));
    return row;
  }

  async findById(id: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.id, id));
    return row;
  }

  async groupsOf(userId: string): Promise<{ id: string; name: string }[]> {
    return this.db
      .select({ id: groups.id, name: groups.name })
      .from(groupMemberships)
      .innerJoin(groups, eq(groups.id, groupMemberships.groupId))
      .where(eq(groupMemberships.userId, userId))
      .orderBy(asc(groups.name));
  }

  async agencyName(agencyId: string): Promise<string> {
    const [row] = await this.db.select({ name: agencies.name }).from(agencies).where(eq(agencies.id, agencyId));
    return row?.name ?? '';
  }

  async listByAgency(agencyId: string): Promise<UserRow[]> {
    return this.db.select().from(users).where(eq(users.agencyId, agencyId)).orderBy(asc(users.email));
  }

  /** Returns false when the user was already disabled (or does not exist in that agency). */
  async disable(agencyId: string, userId: string): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ disabledAt: new Date().toISOString() })
      .where(and(eq(users.id, userId), eq(users.agencyId, agencyId), isNull(users.disabledAt)))
      .returning({ id: users.id });
    return rows.length === 1;
  }
}
