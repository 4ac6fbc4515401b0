import express, { Router, type Request, type Response } from 'express';
import twilio from 'twilio';
import { z } from 'zod';
import { ATTACHMENT_TYPES, ContinueByTextInput, MAX_ATTACHMENT_BYTES, TwilioSettingsInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireConstituent, requireStaff } from '../../http/principal.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import { acceptableMedia, type SmsInboundService } from './sms-inbound.service.js';
import type { SmsOutboundService } from './sms-outbound.service.js';
import type { TextLinkService } from './text-link.service.js';
import { MediaRefused, type FetchedMedia, type TwilioClients } from './twilio-client.js';
import type { TwilioAgency, TwilioSettingsService } from './twilio-settings.service.js';
import { verifyTwilioSignature } from './webhook-signature.js';

const E164 = /^\+[1-9]\d{6,14}$/;
const MESSAGE_SID = /^(SM|MM)[0-9a-fA-F]{32}$/;
const MAX_MEDIA = 10;
const emptyTwiml = () => new twilio.twiml.MessagingResponse().toString();

/** Admin settings, text retries and continue-by-text under /api. */
export function twilioApiRoutes(deps: {
  settings: TwilioSettingsService;
  outbound: SmsOutboundService;
  conversations: ConversationService;
  textLink: TextLinkService;
}): Router {
  const router = Router();
  router.get('/admin/twilio', async (_req, res) => {
    res.json(await deps.settings.get(requireStaff(res)));
  });
  router.put('/admin/twilio', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.settings.set(p, parse(TwilioSettingsInput, req.body)));
  });
  router.post('/messages/:messageId/retry-delivery', async (req, res) => {
    const p = requireStaff(res);
    const { messageId } = parse(z.object({ messageId: z.uuid() }), req.params);
    res.json(await deps.outbound.retry(p, messageId, (id) => deps.conversations.get(p, id)));
  });
  router.post('/conversations/:conversationId/text', async (req, res) => {
    const p = requireConstituent(res);
    const { conversationId } = parse(z.object({ conversationId: z.uuid() }), req.params);
    res.json(await deps.textLink.continueByText(p, conversationId, parse(ContinueByTextInput, req.body)));
  });
  return router;
}

/** Twilio's webhooks under /webhooks/twilio: signed by Twilio with the agency's auth token, not by a session. */
export function twilioWebhookRoutes(deps: {
  settings: TwilioSettingsService;
  clients: TwilioClients;
  inbound: SmsInboundService;
  outbound: SmsOutboundService;
  audit: AuditRepository;
  logger: Logger;
  agencyName: (agencyId: string) => Promise<string>;
}): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 200 });

  /**
   * Fail closed: an unknown number, an agency without Twilio set up, or a missing or wrong signature gets 403
   * and changes nothing. `ours` names the parameter holding the agency's number (To inbound, From for status).
   */
  async function verified(req: Request, res: Response, path: string, ours: 'To' | 'From'): Promise<{ agency: TwilioAgency; params: Record<string, string> } | undefined> {
    const params = (req.body ?? {}) as Record<string, string>;
    const number = params[ours];
    const agency = typeof number === 'string' ? await deps.settings.byNumber(number) : undefined;
    if (!(await verifyTwilioSignature(req, res, agency, deps.audit, { action: 'twilio.webhook', detail: { path } })) || !agency) return undefined;
    if (params.AccountSid !== agency.accountSid) {
      res.status(400).type('text/plain').send('Bad request: AccountSid does not match the number');
      return undefined;
    }
    return { agency, params };
  }

  /** An inbound text (SMS or MMS). A retry of a stored MessageSid is answered the same and stored once. */
  router.post('/webhooks/twilio/sms', form, async (req, res) => {
    const ok = await verified(req, res, '/webhooks/twilio/sms', 'To');
    if (!ok) return;
    const { agency, params } = ok;
    const numMedia = Number(params.NumMedia ?? '0');
    if (!MESSAGE_SID.test(params.MessageSid ?? '') || !E164.test(params.From ?? '') || !Number.isInteger(numMedia) || numMedia < 0 || numMedia > MAX_MEDIA) {
      res.status(400).type('text/plain').send('Bad request: MessageSid, From and NumMedia (0-10) are required');
      return;
    }
    if (await deps.inbound.seen(params.MessageSid!)) {
      res.type('text/xml').send(emptyTwiml());
      return;
    }
    const { media, refused } = await fetchAll(agency, params, numMedia);
    const notes = refused.map((why) => `[A picture could not be received: ${why}]`);
    const body = [String(params.Body ?? '').slice(0, 4000), ...notes].filter(Boolean).join('\n') || '(empty text)';
    const out = await deps.inbound.receive(agency.agencyId, { from: params.From!, body, messageSid: params.MessageSid!, media });
    if (out.keyword === 'help') {
      const reply = new twilio.twiml.MessagingResponse();
      reply.message(`${await deps.agencyName(agency.agencyId)}: text your question and an agent will answer. Reply STOP to stop texts.`);
      res.type('text/xml').send(reply.toString());
      return;
    }
    res.type('text/xml').send(emptyTwiml());
  });

  async function fetchAll(agency: TwilioAgency, params: Record<string, string>, n: number): Promise<{ media: FetchedMedia[]; refused: string[] }> {
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        try {
          const got = await deps.clients.fetchMedia(agency, String(params[`MediaUrl${i}`] ?? ''), {
            maxBytes: MAX_ATTACHMENT_BYTES,
            allowedTypes: ATTACHMENT_TYPES,
          });
          // The bytes must be what the header said: a PNG, JPEG, GIF, WebP or PDF.
          return acceptableMedia(got) ?? 'its type is not accepted';
        } catch (err) {
          if (!(err instanceof MediaRefused)) deps.logger.warn({ err: (err as Error).message }, 'MMS media fetch failed');
          return err instanceof MediaRefused ? err.message : 'Twilio did not send it in time';
        }
      }),
    );
    return {
      media: results.filter((r): r is FetchedMedia => typeof r !== 'string'),
      refused: results.filter((r): r is string => typeof r === 'string'),
    };
  }

  /** Delivery status of a text we sent (queued, sent, delivered, undelivered, failed). */
  router.post('/webhooks/twilio/sms/status', form, async (req, res) => {
    const ok = await verified(req, res, '/webhooks/twilio/sms/status', 'From');
    if (!ok) return;
    if (!MESSAGE_SID.test(ok.params.MessageSid ?? '') || typeof ok.params.MessageStatus !== 'string') {
      res.status(400).type('text/plain').send('Bad request: MessageSid and MessageStatus are required');
      return;
    }
    await deps.outbound.statusChanged(ok.agency.agencyId, ok.params);
    res.status(204).end();
  });

  return router;
}
