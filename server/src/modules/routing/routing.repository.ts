import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { conversations, groupMemberships, groups, users } from '../../db/schema.js';

export type RoutingMode = (typeof groups.$inferSelect)['routing'];

/** Calls and written conversations have separate capacities: a person on a call can still answer chats. */
export type WorkKind = 'voice' | 'messaging';
export const kindOf = (channel: string): WorkKind => (channel === 'voice' ? 'voice' : 'messaging');
const sameKind = (kind: WorkKind) => (kind === 'voice' ? sql`c.channel = 'voice'` : sql`c.channel <> 'voice'`);

/** An agent who could take work in a group now, with their load. */
export interface Candidate {
  id: string;
  name: string;
  load: number;
  capacity: number;
  /** When they were last given work (null: never). */
  lastAssignedAt: string | null;
}

/** The reads and locks routing needs; every capacity check happens under the agent's row lock. */
export class RoutingRepository {
  constructor(private readonly db: Db) {}

  async group(groupId: string, tx: Tx | Db = this.db) {
    const [row] = await tx.select().from(groups).where(eq(groups.id, groupId));
    return row;
  }

  /** Groups of an agency that route automatically and have someone waiting. */
  async routedGroupsWithQueue(): Promise<string[]> {
    const rows = await this.db
      .selectDistinct({ id: groups.id })
      .from(groups)
      .innerJoin(conversations, and(eq(conversations.groupId, groups.id), eq(conversations.status, 'queued')))
      .where(sql`${groups.routing} <> 'manual'`);
    return rows.map((r) => r.id);
  }

  async groupsOf(userId: string): Promise<string[]> {
    const rows = await this.db.select({ id: groupMemberships.groupId }).from(groupMemberships).where(eq(groupMemberships.userId, userId));
    return rows.map((r) => r.id);
  }

  /**
   * The first conversation in line, locked for this transaction; one another node is routing is skipped, so
   * two nodes never route the same conversation.
   */
  async lockNextQueued(tx: Tx, groupId: string): Promise<{ id: string; caseId: string; channel: string; createdAt: string } | undefined> {
    const [row] = await tx
      .select({ id: conversations.id, caseId: conversations.caseId, channel: conversations.channel, createdAt: conversations.createdAt })
      .from(conversations)
      .where(and(eq(conversations.groupId, groupId), eq(conversations.status, 'queued')))
      .orderBy(asc(conversations.createdAt), asc(conversations.id))
      .limit(1)
      .for('update', { skipLocked: true });
    return row;
  }

  /** Members of the group who are available and not disabled (admins do not take work), with their load. */
  async candidates(tx: Tx, groupId: string, kind: WorkKind): Promise<Candidate[]> {
    const rows = await tx
      .select({
        id: users.id,
        name: users.displayName,
        capacity: kind === 'voice' ? users.voiceCapacity : users.capacity,
        load: sql<number>`(select count(*)::int from ${conversations} c where c.assignee_id = ${users.id} and c.status = 'active' and ${sameKind(kind)})`,
        lastAssignedAt: sql<string | null>`(select max(c.claimed_at) from ${conversations} c where c.assignee_id = ${users.id})`,
      })
      .from(users)
      .innerJoin(groupMemberships, eq(groupMemberships.userId, users.id))
      .where(
        and(
          eq(groupMemberships.groupId, groupId),
          eq(users.presence, 'available'),
          isNull(users.disabledAt),
          inArray(users.role, ['agent', 'supervisor']),
        ),
      )
      .orderBy(asc(users.id));
    return rows.map((r) => ({ ...r, load: Number(r.load) }));
  }

  /**
   * Locks one agent's row and reads their load and presence again under the lock: while this transaction
   * lasts, no other assignment to them can commit, so their capacity cannot be exceeded.
   */
  async lockAgentLoad(tx: Tx, userId: string, kind: WorkKind): Promise<{ load: number; capacity: number; available: boolean } | undefined> {
    const [u] = await tx
      .select({ capacity: users.capacity, voiceCapacity: users.voiceCapacity, presence: users.presence, disabledAt: users.disabledAt })
      .from(users)
      .where(eq(users.id, userId))
      .for('update');
    if (!u) return undefined;
    const [c] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(sql`${conversations} c`)
      .where(sql`c.assignee_id = ${userId} and c.status = 'active' and ${sameKind(kind)}`);
    const capacity = kind === 'voice' ? u.voiceCapacity : u.capacity;
    return { load: Number(c?.n ?? 0), capacity, available: u.presence === 'available' && !u.disabledAt };
  }
}
