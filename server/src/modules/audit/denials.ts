import type { AppError } from '../../errors.js';
import type { Logger } from '../../lib/logger.js';
import type { Principal } from '../principal.js';
import type { AuditRepository } from './audit.repository.js';

/**
 * Refusals worth an audit row: 403s, and 404s on objects (access checks answer NOT_FOUND for what a caller may
 * not see, so that ids cannot be probed). Only for a signed-in caller (staff or constituent); anonymous
 * traffic is rate-limited and logged instead.
 */
export function isDenial(err: AppError): boolean {
  return err.code === 'FORBIDDEN' || err.code === 'CSRF_FAILED' || err.code === 'NOT_FOUND';
}

export async function recordDenial(
  audit: AuditRepository,
  logger: Logger,
  p: Principal,
  err: AppError,
  where: { via: 'http' | 'socket'; what: string },
): Promise<void> {
  await audit
    .record({
      agencyId: p.agencyId,
      actorKind: p.kind,
      actorId: p.kind === 'staff' ? p.userId : p.constituentId,
      action: 'access.denied',
      objectType: where.via === 'http' ? 'endpoint' : 'event',
      objectId: where.what,
      outcome: 'denied',
      detail: { code: err.code },
    })
    .catch((e: unknown) => logger.warn({ err: (e as Error).message }, 'access denial not audited'));
}
