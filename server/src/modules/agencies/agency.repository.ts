import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { agencies, cannedResponses, groups } from '../../db/schema.js';

export type AgencyRow = typeof agencies.$inferSelect;

export class AgencyRepository {
  constructor(private readonly db: Db) {}

  async findByWidgetKey(key: string): Promise<AgencyRow | undefined> {
    const [row] = await this.db.select().from(agencies).where(eq(agencies.widgetKey, key));
    return row;
  }

  async findBySlug(slug: string): Promise<AgencyRow | undefined> {
    const [row] = await this.db.select().from(agencies).where(eq(agencies.slug, slug));
    return row;
  }

  async list(): Promise<{ slug: string; name: string }[]> {
    return this.db.select({ slug: agencies.slug, name: agencies.name }).from(agencies).orderBy(agencies.name);
  }

  async findById(id: string, tx: Tx | Db = this.db): Promise<AgencyRow | undefined> {
    const [row] = await tx.select().from(agencies).where(eq(agencies.id, id));
    return row;
  }

  async defaultGroupId(agencyId: string, tx: Tx | Db = this.db): Promise<string | undefined> {
    const [row] = await tx
      .select({ id: groups.id })
      .from(groups)
      .where(and(eq(groups.agencyId, agencyId), eq(groups.isDefault, true)));
    return row?.id;
  }

  async findGroup(agencyId: string, groupId: string): Promise<{ id: string; name: string } | undefined> {
    const [row] = await this.db
      .select({ id: groups.id, name: groups.name })
      .from(groups)
      .where(and(eq(groups.agencyId, agencyId), eq(groups.id, groupId)));
    return row;
  }

  async listGroups(agencyId: string): Promise<{ id: string; name: string }[]> {
    return this.db
      .select({ id: groups.id, name: groups.name })
      .from(groups)
      .where(eq(groups.agencyId, agencyId))
      .orderBy(groups.name);
  }

  /** New SLA clocks use it; clocks already running keep the instants they were given. */
  async setCalendar(agencyId: string, businessHours: AgencyRow['businessHours'], holidays: string[]): Promise<void> {
    await this.db.update(agencies).set({ businessHours, holidays }).where(eq(agencies.id, agencyId));
  }

  /** A new group (routing: agents take work until an admin says otherwise). Undefined when the name is taken. */
  async createGroup(agencyId: string, name: string): Promise<{ id: string } | undefined> {
    const [row] = await this.db
      .insert(groups)
      .values({ agencyId, name })
      .onConflictDoNothing({ target: [groups.agencyId, groups.name] })
      .returning({ id: groups.id });
    return row;
  }

  async groupDetails(agencyId: string) {
    return this.db
      .select({ id: groups.id, name: groups.name, routing: groups.routing, acceptSeconds: groups.acceptSeconds, isDefault: groups.isDefault })
      .from(groups)
      .where(eq(groups.agencyId, agencyId))
      .orderBy(groups.name);
  }

  async setGroupRouting(
    agencyId: string,
    groupId: string,
    settings: { routing: (typeof groups.$inferSelect)['routing']; acceptSeconds?: number },
  ): Promise<boolean> {
    const rows = await this.db
      .update(groups)
      .set(settings)
      .where(and(eq(groups.agencyId, agencyId), eq(groups.id, groupId)))
      .returning({ id: groups.id });
    return rows.length > 0;
  }

  async cannedResponses(agencyId: string): Promise<{ id: string; title: string; body: string }[]> {
    return this.db
      .select({ id: cannedResponses.id, title: cannedResponses.title, body: cannedResponses.body })
      .from(cannedResponses)
      .where(eq(cannedResponses.agencyId, agencyId))
      .orderBy(cannedResponses.title);
  }
}
