import { and, asc, eq, inArray, isNotNull, isNull } from 'drizzle-orm';
import type { Presence } from '@casebridge/shared';
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

  /**
   * The groups whose work someone sees: their memberships, or every group of the agency for an agency-wide
   * supervisor (memberships still decide who routing gives work to).
   */
  async visibleGroupsOf(user: Pick<UserRow, 'id' | 'agencyId' | 'role' | 'allGroups'>): Promise<{ id: string; name: string }[]> {
    if (user.role === 'supervisor' && user.allGroups) {
      return this.db.select({ id: groups.id, name: groups.name }).from(groups).where(eq(groups.agencyId, user.agencyId)).orderBy(asc(groups.name));
    }
    return this.groupsOf(user.id);
  }

  /** Replaces a colleague's role and groups in one commit (the groups must be the agency's: the caller checks). */
  async setAccess(userId: string, role: UserRow['role'], groupIds: string[], allGroups = false): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.update(users).set({ role, allGroups }).where(eq(users.id, userId));
      await tx.delete(groupMemberships).where(eq(groupMemberships.userId, userId));
      if (groupIds.length) await tx.insert(groupMemberships).values(groupIds.map((groupId) => ({ groupId, userId })));
    });
  }

  /** Which of these ids are groups of the agency. */
  async agencyGroupIds(agencyId: string, ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const rows = await this.db
      .select({ id: groups.id })
      .from(groups)
      .where(and(eq(groups.agencyId, agencyId), inArray(groups.id, ids)));
    return rows.map((r) => r.id);
  }

  async agencyName(agencyId: string): Promise<string> {
    const [row] = await this.db.select({ name: agencies.name }).from(agencies).where(eq(agencies.id, agencyId));
    return row?.name ?? '';
  }

  async listByAgency(agencyId: string): Promise<UserRow[]> {
    return this.db.select().from(users).where(eq(users.agencyId, agencyId)).orderBy(asc(users.email));
  }

  /** A new colleague with their groups, in one commit. Undefined when the email is taken (by any agency). */
  async create(input: {
    agencyId: string;
    email: string;
    displayName: string;
    role: UserRow['role'];
    allGroups: boolean;
    passwordHash: string;
    groupIds: string[];
  }): Promise<UserRow | undefined> {
    const { groupIds, ...row } = input;
    return this.db.transaction(async (tx) => {
      const [user] = await tx.insert(users).values(row).onConflictDoNothing({ target: users.email }).returning();
      if (!user) return undefined;
      if (groupIds.length) await tx.insert(groupMemberships).values(groupIds.map((groupId) => ({ groupId, userId: user.id })));
      return user;
    });
  }

  /** Every account of the agency, disabled ones too, with their group memberships. */
  async accounts(agencyId: string) {
    const rows = await this.db
      .select({
        id: users.id,
        email: users.email,
        displayName: users.displayName,
        role: users.role,
        allGroups: users.allGroups,
        presence: users.presence,
        disabledAt: users.disabledAt,
        createdAt: users.createdAt,
        groupId: groupMemberships.groupId,
      })
      .from(users)
      .leftJoin(groupMemberships, eq(groupMemberships.userId, users.id))
      .where(eq(users.agencyId, agencyId))
      .orderBy(asc(users.displayName), asc(users.email));
    return withGroupIds(rows);
  }

  async setPassword(userId: string, passwordHash: string): Promise<void> {
    await this.db.update(users).set({ passwordHash }).where(eq(users.id, userId));
  }

  /** Returns false when the account was not disabled (or is not in that agency). */
  async enable(agencyId: string, userId: string): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ disabledAt: null })
      .where(and(eq(users.id, userId), eq(users.agencyId, agencyId), isNotNull(users.disabledAt)))
      .returning({ id: users.id });
    return rows.length === 1;
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

  /** Sets presence; with `from`, only when it currently is one of those. Returns the new value if it changed. */
  async setPresence(userId: string, presence: Presence, from?: Presence[]): Promise<Presence | undefined> {
    const rows = await this.db
      .update(users)
      .set({ presence })
      .where(and(eq(users.id, userId), from ? inArray(users.presence, from) : undefined))
      .returning({ presence: users.presence });
    return rows[0]?.presence;
  }

  /** Of these users, the ones who said they are available. */
  async availableAmong(userIds: string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    const rows = await this.db
      .select({ id: users.id })
      .from(users)
      .where(and(inArray(users.id, userIds), eq(users.presence, 'available'), isNull(users.disabledAt)));
    return rows.map((r) => r.id);
  }

  /** The agency's active staff with the groups they belong to. */
  async setCapacity(userId: string, input: { capacity: number; voiceCapacity?: number }): Promise<void> {
    await this.db.update(users).set(input).where(eq(users.id, userId));
  }

  async listStaff(agencyId: string) {
    const rows = await this.db
      .select({
        id: users.id,
        displayName: users.displayName,
        role: users.role,
        allGroups: users.allGroups,
        presence: users.presence,
        capacity: users.capacity,
        groupId: groupMemberships.groupId,
      })
      .from(users)
      .leftJoin(groupMemberships, eq(groupMemberships.userId, users.id))
      .where(and(eq(users.agencyId, agencyId), isNull(users.disabledAt)))
      .orderBy(asc(users.displayName));
    return withGroupIds(rows);
  }
}

/** One row per user with their memberships gathered, from a user ⟕ membership join (in the join's order). */
function withGroupIds<R extends { id: string; groupId: string | null }>(rows: R[]): (Omit<R, 'groupId'> & { groupIds: string[] })[] {
  const byId = new Map<string, Omit<R, 'groupId'> & { groupIds: string[] }>();
  for (const { groupId, ...u } of rows) {
    const entry = byId.get(u.id) ?? { ...u, groupIds: [] };
    if (groupId) entry.groupIds.push(groupId);
    byId.set(u.id, entry);
  }
  return [...byId.values()];
}
