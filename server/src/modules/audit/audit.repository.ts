import { and, desc, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import type { AuditEntry as AuditEntryView, AuditOutcome } from '@casebridge/shared';
import { isUuid } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { auditLog, users } from '../../db/schema.js';
import { currentContext } from '../../lib/request-context.js';
import { toIso } from '../../lib/time.js';

export interface AuditEntry {
  agencyId: string | null;
  actorKind: 'staff' | 'constituent' | 'system' | 'anonymous';
  actorId: string | null;
  /** The staff member's role; the database fills it from users when absent. */
  actorRole?: string;
  action: string;
  objectType?: string;
  objectId?: string;
  outcome: 'success' | 'denied' | 'failure';
  /** Defaults to the IP of the request or socket being handled (request context). */
  sourceIp?: string;
  /** Ids and codes only: never names, bodies, emails or phone numbers. */
  detail?: Record<string, unknown>;
}

export interface AuditFilter {
  agencyId: string;
  actor?: string;
  action?: string;
  objectType?: string;
  objectId?: string;
  outcome?: AuditOutcome;
  from?: string;
  to?: string;
}


/**
 * Append-only: this module has no update or delete, on purpose, and the database refuses both anyway (a
 * trigger). The database also sets the time, the actor's role and the hash chain (migration 0013).
 */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async record(entry: AuditEntry, tx: Tx | Db = this.db): Promise<void> {
    const ctx = currentContext();
    await tx.insert(auditLog).values({
      agencyId: entry.agencyId,
      actorKind: entry.actorKind,
      actorId: entry.actorId,
      actorRole: entry.actorRole,
      action: entry.action,
      objectType: entry.objectType,
      objectId: entry.objectId,
      outcome: entry.outcome,
      sourceIp: entry.sourceIp ?? ctx?.sourceIp,
      userAgentHash: ctx?.userAgentHash,
      detail: entry.detail ?? {},
    });
  }

  private where(f: AuditFilter): SQL {
    const conds: SQL[] = [eq(auditLog.agencyId, f.agencyId)];
    if (f.actor) {
      conds.push(
        isUuid(f.actor)
          ? eq(auditLog.actorId, f.actor)
          : sql`(position(lower(${f.actor}) in lower(${users.email})) > 0 or position(lower(${f.actor}) in lower(${users.displayName})) > 0)`,
      );
    }
    if (f.action) conds.push(f.action.endsWith('.') ? sql`starts_with(${auditLog.action}, ${f.action})` : eq(auditLog.action, f.action));
    if (f.objectType) conds.push(eq(auditLog.objectType, f.objectType));
    if (f.objectId) conds.push(eq(auditLog.objectId, f.objectId));
    if (f.outcome) conds.push(eq(auditLog.outcome, f.outcome));
    if (f.from) conds.push(gte(auditLog.createdAt, sql`${f.from}::date`));
    if (f.to) conds.push(lt(auditLog.createdAt, sql`${f.to}::date + 1`));
    return and(...conds)!;
  }

  /** Newest first; the actor's current name is joined for display (the row keeps only ids). */
  async search(f: AuditFilter, limit: number, offset: number): Promise<{ entries: AuditEntryView[]; total: number }> {
    const where = this.where(f);
    const [count] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(auditLog)
      .leftJoin(users, eq(users.id, auditLog.actorId))
      .where(where);
    const rows = await this.db
      .select({ a: auditLog, actorName: users.displayName })
      .from(auditLog)
      .leftJoin(users, eq(users.id, auditLog.actorId))
      .where(where)
      .orderBy(desc(auditLog.createdAt), desc(auditLog.seq))
      .limit(limit)
      .offset(offset);
    return {
      total: count?.n ?? 0,
      entries: rows.map(({ a, actorName }) => ({
        id: a.id,
        seq: a.seq,
        createdAt: toIso(a.createdAt),
        actorKind: a.actorKind,
        actorId: a.actorId,
        actorName: a.actorKind === 'staff' ? actorName : null,
        actorRole: a.actorRole,
        action: a.action,
        objectType: a.objectType,
        objectId: a.objectId,
        outcome: a.outcome,
        sourceIp: a.sourceIp,
        detail: a.detail,
      })),
    };
  }
}
