import type { Request, Response } from 'express';
import twilio from 'twilio';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { TwilioAgency } from './twilio-settings.service.js';

type Signer = Pick<TwilioAgency, 'authToken' | 'publicBaseUrl'>;

/** True when Twilio signed this request with the agency's auth token for the exact public URL it called. */
export function signedBy(req: Request, agency: Signer): boolean {
  const params = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, string>;
  const signature = req.header('X-Twilio-Signature');
  return Boolean(signature) && twilio.validateRequest(agency.authToken, signature!, `${agency.publicBaseUrl}${req.originalUrl}`, params);
}

/** Answers 403 to a webhook that failed its check, and records the denial (nothing else happens). */
export async function refuseWebhook(
  req: Request,
  res: Response,
  audit: AuditRepository,
  what: { action: string; agencyId?: string | null; reason: 'unknown_number' | 'bad_signature'; detail?: Record<string, unknown> },
): Promise<void> {
  await audit
    .record({
      agencyId: what.agencyId ?? null,
      actorKind: 'anonymous',
      actorId: null,
      action: what.action,
      outcome: 'denied',
      sourceIp: req.ip,
      detail: { ...what.detail, reason: what.reason },
    })
    .catch(() => undefined);
  res.status(403).type('text/plain').send('Forbidden');
}

/**
 * Fails closed: no agency (unknown number, Twilio not set up), no signature or a wrong one answers 403,
 * records the denial, and returns false — the caller does nothing.
 */
export async function verifyTwilioSignature(
  req: Request,
  res: Response,
  agency: TwilioAgency | undefined,
  audit: AuditRepository,
  what: { action: string; detail?: Record<string, unknown> },
): Promise<boolean> {
  if (agency && signedBy(req, agency)) return true;
  await refuseWebhook(req, res, audit, { ...what, agencyId: agency?.agencyId, reason: agency ? 'bad_signature' : 'unknown_number' });
  return false;
}
