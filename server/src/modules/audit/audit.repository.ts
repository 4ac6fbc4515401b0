import type { Db, Tx } from '../../db/client.js';
import { auditLog } from '../../db/schema.js';

export interface AuditEntry {
  agencyId: string | null;
  actorKind: 'staff' | 'constituent' | 'system' | 'anonymous';
  actorId: string | null;
  action: string;
  objectType?: string;
  objectId?: string;
  outcome: 'success' | 'denied' | 'failure';
  sourceIp?: string;
  /** Ids and codes only: never names, bodies, emails or phone numbers. */
  detail?: Record<string, unknown>;
}

/** Append-only: this module has no update or delete, on purpose. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async record(entry: AuditEntry, tx: Tx | Db = this.db): Promise<void> {
    await tx.insert(auditLog).values({
      agencyId: entry.agencyId,
      actorKind: entry.actorKind,
      actorId: entry.actorId,
      action: entry.action,
      objectType: entry.objectType,
      objectId: entry.objectId,
      outcome: entry.outcome,
      sourceIp: entry.sourceIp,
      detail: entry.detail ?? {},
    });
  }
}
