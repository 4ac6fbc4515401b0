import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { caseTypes, serviceDefinitions } from '../../db/schema.js';

export type CaseTypeRow = typeof caseTypes.$inferSelect;
export type ServiceRow = typeof serviceDefinitions.$inferSelect;

export class CaseTypeRepository {
  constructor(private readonly db: Db) {}

  async list(agencyId: string): Promise<CaseTypeRow[]> {
    return this.db.select().from(caseTypes).where(eq(caseTypes.agencyId, agencyId)).orderBy(caseTypes.name);
  }

  async find(agencyId: string, id: string, tx: Tx | Db = this.db): Promise<CaseTypeRow | undefined> {
    const [row] = await tx
      .select()
      .from(caseTypes)
      .where(and(eq(caseTypes.agencyId, agencyId), eq(caseTypes.id, id)));
    return row;
  }

  async create(values: typeof caseTypes.$inferInsert): Promise<CaseTypeRow> {
    const [row] = await this.db.insert(caseTypes).values(values).returning();
    return row!;
  }

  /** Replaces the definition if it is still at `version`. */
  async update(
    id: string,
    version: number,
    values: Partial<typeof caseTypes.$inferInsert>,
  ): Promise<CaseTypeRow | undefined> {
    const [row] = await this.db
      .update(caseTypes)
      .set({ ...values, version: version + 1 })
      .where(and(eq(caseTypes.id, id), eq(caseTypes.version, version)))
      .returning();
    return row;
  }

  async listServices(agencyId: string): Promise<ServiceRow[]> {
    return this.db
      .select()
      .from(serviceDefinitions)
      .where(eq(serviceDefinitions.agencyId, agencyId))
      .orderBy(serviceDefinitions.category, serviceDefinitions.createdAt);
  }

  async findService(agencyId: string, id: string): Promise<ServiceRow | undefined> {
    const [row] = await this.db
      .select()
      .from(serviceDefinitions)
      .where(and(eq(serviceDefinitions.agencyId, agencyId), eq(serviceDefinitions.id, id)));
    return row;
  }

  async createService(values: typeof serviceDefinitions.$inferInsert): Promise<ServiceRow> {
    const [row] = await this.db.insert(serviceDefinitions).values(values).returning();
    return row!;
  }

  async updateService(id: string, values: Partial<typeof serviceDefinitions.$inferInsert>): Promise<ServiceRow> {
    const [row] = await this.db.update(serviceDefinitions).set(values).where(eq(serviceDefinitions.id, id)).returning();
    return row!;
  }
}
