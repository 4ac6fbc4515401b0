import express, { Router, type Request, type Response } from 'express';
import { DeclineInput, ExchangeEvent, HandoffQuery, Id, OfferInput, PartnerInput, PartnerKeyInput, PartnerPatch } from '@casebridge/shared';
import { z } from 'zod';
import { AppError, fromZod, statusOf, toApiError } from '../../errors.js';
import { assertNoNul, parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { ExchangeRepository, PartnerRow } from './exchange.repository.js';
import type { ExchangeService } from './exchange.service.js';
import { EXCHANGE_PATH, H, MAX_SKEW_MS, responsePayload, signWith, verifyWith, requestPayload, withinSkew } from './exchange.signing.js';
import type { SecretBox } from '../../lib/secret-box.js';
import type { Limiter } from '../../lib/rate-limit.js';

const IdParam = z.object({ id: Id });
const KeyParam = z.object({ id: Id, keyId: z.string().min(1).max(80) });

/** Staff API under /api/exchange: admins manage partners; agents offer, accept and decline work. */
export function exchangeRoutes(deps: { exchange: ExchangeService }): Router {
  const r = Router();
  const x = deps.exchange;

  r.get('/exchange/partners', async (_req, res) => {
    res.json({ partners: await x.listPartners(requireStaff(res)) });
  });
  r.post('/exchange/partners', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await x.createPartner(p, parse(PartnerInput, req.body)));
  });
  r.get('/exchange/partners/options', async (_req, res) => {
    res.json({ partners: await x.options(requireStaff(res)) });
  });
  r.get('/exchange/partners/:id', async (req, res) => {
    const p = requireStaff(res);
    res.json(await x.getPartner(p, parse(IdParam, req.params).id));
  });
  r.patch('/exchange/partners/:id', async (req, res) => {
    const p = requireStaff(res);
    res.json(await x.updatePartner(p, parse(IdParam, req.params).id, parse(PartnerPatch, req.body)));
  });
  // Their public keys (any active one verifies), and ours (a new one is published before it signs).
  r.post('/exchange/partners/:id/their-keys', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await x.addTheirKey(p, parse(IdParam, req.params).id, parse(PartnerKeyInput, req.body)));
  });
  r.post('/exchange/partners/:id/their-keys/:keyId/revoke', async (req, res) => {
    const p = requireStaff(res);
    const { id, keyId } = parse(KeyParam, req.params);
    res.json(await x.revokeTheirKey(p, id, keyId));
  });
  r.post('/exchange/partners/:id/our-keys', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await x.newOurKey(p, parse(IdParam, req.params).id));
  });
  r.post('/exchange/partners/:id/our-keys/:keyId/promote', async (req, res) => {
    const p = requireStaff(res);
    const { id, keyId } = parse(KeyParam, req.params);
    res.json(await x.promoteOurKey(p, id, keyId));
  });

  r.get('/exchange/handoffs', async (req, res) => {
    const p = requireStaff(res);
    res.json({ handoffs: await x.list(p, parse(HandoffQuery, req.query)) });
  });
  r.post('/exchange/handoffs', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await x.offer(p, parse(OfferInput, req.body)));
  });
  r.get('/exchange/handoffs/:id', async (req, res) => {
    const p = requireStaff(res);
    res.json({ handoffs: await x.get(p, parse(IdParam, req.params).id) });
  });
  r.post('/exchange/handoffs/:id/accept', async (req, res) => {
    const p = requireStaff(res);
    res.json(await x.accept(p, parse(IdParam, req.params).id));
  });
  r.post('/exchange/handoffs/:id/decline', async (req, res) => {
    const p = requireStaff(res);
    res.json(await x.decline(p, parse(IdParam, req.params).id, parse(DeclineInput, req.body).reason));
  });
  return r;
}

/**
 * The one endpoint partners call: POST /exchange/v1/events. Refused (401, nothing written) unless signed by an
 * active key of an active partner, within the time window, with a nonce never seen before. The answer is
 * signed with our key for that partner, and a retried event (same idempotency key) gets the first answer again.
 */
export function exchangeInboundRoutes(deps: {
  exchange: ExchangeService;
  repo: ExchangeRepository;
  box: SecretBox;
  audit: AuditRepository;
  logger: Logger;
  /** Refused calls audited per IP: past the budget they are still refused, but no longer each written down. */
  refusals: Limiter;
}): Router {
  const r = Router();
  r.post(EXCHANGE_PATH, express.raw({ type: () => true, limit: '256kb' }), async (req: Request, res: Response) => {
    const ip = req.ip ?? 'unknown';
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : '';
    };
    const keyId = header(H.key);
    const ts = header(H.timestamp);
    const nonce = header(H.nonce);
    const idem = header(H.idempotency);
    const signature = header(H.signature);

    const refuse = async (reason: string, partner?: PartnerRow) => {
      // A flood of junk must not become a flood of audit rows; partners' signed calls are never counted here.
      const flooding = await deps.refusals.consume(ip).then(() => false, () => true);
      if (!flooding) await deps.audit
        .record({
          agencyId: partner?.agencyId ?? null,
          actorKind: 'anonymous',
          actorId: null,
          action: 'exchange.inbound_refused',
          objectType: 'exchange_partner',
          objectId: partner?.id,
          outcome: 'denied',
          detail: { reason, keyId: keyId.slice(0, 80) || null },
        })
        .catch(() => undefined);
      res.status(401).json({ error: { code: 'UNAUTHENTICATED', message: 'Request refused: not signed by a registered partner' } });
    };

    if (!keyId || !ts || !nonce || !idem || !signature) return refuse('unsigned');
    if (keyId.length > 80 || nonce.length > 64 || idem.length > 100 || signature.length > 200) return refuse('malformed');
    const found = await deps.repo.theirKey(keyId);
    if (!found) return refuse('unknown key');
    const { key, partner } = found;
    if (partner.status !== 'active' || key.status !== 'active') return refuse('revoked', partner);
    if (!withinSkew(ts, Date.now())) return refuse('stale timestamp', partner);
    if (!verifyWith(key.publicKey, requestPayload(req.method, EXCHANGE_PATH, ts, nonce, idem, body), signature)) {
      return refuse('bad signature', partner);
    }
    // The nonce outlives the time window, so a captured request can never be replayed.
    if (!(await deps.repo.useNonce(partner.id, nonce, new Date(Number(ts) + 2 * MAX_SKEW_MS).toISOString()))) {
      return refuse('replayed', partner);
    }

    const answer = async (status: number, payload: Record<string, unknown>) => {
      const ours = await deps.repo.signingKey(partner.id);
      const privateKey = ours?.privateKeySealed ? deps.box.open(ours.privateKeySealed) : undefined;
      const text = Buffer.from(JSON.stringify(payload));
      const answerTs = String(Date.now());
      if (ours && privateKey) {
        res.setHeader(H.key, ours.keyId);
        res.setHeader(H.timestamp, answerTs);
        res.setHeader(H.signature, signWith(privateKey, responsePayload(status, nonce, answerTs, text)));
      }
      res.status(status).type('application/json').send(text);
    };

    const previous = await deps.repo.inboxAnswer(partner.id, idem);
    if (previous) return answer(200, previous);
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(body.toString('utf8'));
      } catch {
        throw new AppError('INVALID_PAYLOAD', 'Body is not valid JSON');
      }
      assertNoNul(raw);
      const parsed = ExchangeEvent.safeParse(raw);
      if (!parsed.success) throw fromZod(parsed.error);
      const event = parsed.data;
      // The idempotency key is bound to the event, so one signed key cannot be reused for another event.
      if (idem !== `${event.handoffId}:${event.seq}`) throw new AppError('INVALID_PAYLOAD', 'Idempotency key does not match the event');
      const data = await deps.exchange.applyInbound(partner, event);
      const payload = { ok: true, data };
      await deps.repo.rememberAnswer(partner.id, idem, payload);
      return answer(200, payload);
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) deps.logger.error({ err, partnerId: partner.id }, 'exchange event failed');
      return answer(status, { ok: false, error: toApiError(err) });
    }
  });
  return r;
}
