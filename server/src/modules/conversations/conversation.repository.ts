import { and, desc, eq, inArray, ne, sql, type SQL } from 'drizzle-orm';
import type { ConversationStatus } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { cases, constituents, conversations } from '../../db/schema.js';

export type ConversationRow = typeof conversations.$inferSelect;
export type ConversationView = ConversationRow & { caseReference: string; constituentName: string | null };

const viewColumns = {
  conversation: conversations,
  caseReference: cases.reference,
  constituentName: constituents.displayName,
};

function flatten(r: { conversation: ConversationRow; caseReference: string; constituentName: string | null }): ConversationView {
  return { ...r.conversation, caseReference: r.caseReference, constituentName: r.constituentName };
}

export class ConversationRepository {
  constructor(private readonly db: Db) {}

  private view(tx: Tx | Db = this.db) {
    return tx
      .select(viewColumns)
      .from(conversations)
      .innerJoin(cases, eq(cases.id, conversations.caseId))
      .innerJoin(constituents, eq(constituents.id, conversations.constituentId));
  }

  async findView(id: string, tx: Tx | Db = this.db): Promise<ConversationView | undefined> {
    const [row] = await this.view(tx).where(eq(conversations.id, id));
    return row && flatten(row);
  }

  async findOpenByIdentity(tx: Tx, channelIdentityId: string): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .select()
      .from(conversations)
      .where(and(eq(conversations.channelIdentityId, channelIdentityId), ne(conversations.status, 'ended')));
    return row;
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
  async claim(id: string, agentId: string, tx: Tx | Db = this.db): Promise<ConversationRow | undefined> {
    const [row] = await tx
      .update(conversations)
      .set({
        status: 'active',
        assigneeId: agentId,
        claimedAt: sql`now()`,
        version: sql`${conversations.version} + 1`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(conversations.id, id), eq(conversations.status, 'queued')))
      .returning();
    return row;
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

  /** Staff lists: `groupIds` null means the whole agency (admins). */
  async listForStaff(q: {
    agencyId: string;
    groupIds: string[] | null;
    status?: ConversationStatus;
    limit: number;
  }): Promise<ConversationView[]> {
    const where: SQL[] = [eq(conversations.agencyId, q.agencyId)];
    if (q.groupIds) {
      if (q.groupIds.length === 0) return [];
      where.push(inArray(conversations.groupId, q.groupIds));
    }
    if (q.status) where.push(eq(conversations.status, q.status));
    const rows = await this.view()
      .where(and(...where))
      .orderBy(desc(conversations.updatedAt))
      .limit(q.limit);
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
