import express, { Router } from 'express';
import twilio from 'twilio';
import { TwilioSettingsInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { TwilioSettingsService } from './twilio-settings.service.js';

const E164 = /^\+[1-9]\d{6,14}$/;
const MESSAGE_SID = /^(SM|MM)[0-9a-fA-F]{32}$/;
const emptyTwiml = () => new twilio.twiml.MessagingResponse().toString();

/** Admin settings under /api, and Twilio's webhooks under /webhooks/twilio (signed by Twilio, not by a session). */
export function twilioApiRoutes(deps: { settings: TwilioSettingsService }): Router {
  const router = Router();
  router.get('/admin/twilio', async (_req, res) => {
    res.json(await deps.settings.get(requireStaff(res)));
  });
  router.put('/admin/twilio', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.settings.set(p, parse(TwilioSettingsInput, req.body)));
  });
  return router;
}

export function twilioWebhookRoutes(deps: {
  settings: TwilioSettingsService;
  conversations: ConversationService;
  audit: AuditRepository;
  logger: Logger;
}): Router {
  const router = Router();

  /**
   * An inbound text. Fail closed: an unknown number, an agency without Twilio set up, or a missing or wrong
   * signature gets 403 and changes nothing. A retry of a delivered message (same MessageSid) is answered the
   * same and stored once.
   */
  router.post('/webhooks/twilio/sms', express.urlencoded({ extended: false, limit: '64kb' }), async (req, res) => {
    const params = (req.body ?? {}) as Record<string, string>;
    const agency = typeof params.To === 'string' ? await deps.settings.byNumber(params.To) : undefined;
    const signature = req.header('X-Twilio-Signature');
    const url = agency ? `${agency.publicBaseUrl}/webhooks/twilio/sms` : '';
    if (!agency || !signature || !twilio.validateRequest(agency.authToken, signature, url, params)) {
      await deps.audit
        .record({
          agencyId: agency?.agencyId ?? null,
          actorKind: 'anonymous',
          actorId: null,
          action: 'twilio.sms_webhook',
          outcome: 'denied',
          sourceIp: req.ip,
          detail: { reason: !agency ? 'unknown_number' : 'bad_signature' },
        })
        .catch(() => undefined);
      res.status(403).type('text/plain').send('Forbidden');
      return;
    }
    if (params.AccountSid !== agency.accountSid || !MESSAGE_SID.test(params.MessageSid ?? '') || !E164.test(params.From ?? '')) {
      res.status(400).type('text/plain').send('Bad request: AccountSid, MessageSid and From are required');
      return;
    }
    const body = String(params.Body ?? '').slice(0, 4000);
    await deps.conversations.receiveSms(agency.agencyId, { from: params.From!, body, messageSid: params.MessageSid! });
    res.type('text/xml').send(emptyTwiml());
  });

  return router;
}
