import { Router } from 'express';
import { z } from 'zod';
import { CaseReferenceInput, ConversationStatus, InboxQuery, TranscriptEmailInput, MAX_SYNC_PAGE, RatingInput, SendMessageBody, TransferInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireConstituent, requirePrincipal, requireStaff } from '../../http/principal.js';
import type { MessageService } from '../messages/message.service.js';
import { toConstituentView, toSummary } from './conversation.mapper.js';
import type { ConversationService } from './conversation.service.js';

const Params = z.object({ conversationId: z.uuid() });
const ListQuery = z.object({ status: ConversationStatus.optional() });
const SyncQuery = z.object({
  afterSeq: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(MAX_SYNC_PAGE).default(MAX_SYNC_PAGE),
});

/** Conversations and their messages, for staff (cookie) and constituents (widget token) alike. */
export function conversationRoutes(deps: { conversations: ConversationService; messages: MessageService }): Router {
  const router = Router();

  router.get('/conversations', async (req, res) => {
    const p = requirePrincipal(res);
    if (p.kind === 'constituent') {
      res.json({ conversations: await deps.conversations.listForConstituent(p) });
      return;
    }
    const { status } = parse(ListQuery, req.query);
    res.json({ conversations: await deps.conversations.listForStaff(p, status) });
  });

  router.get('/inbox', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.conversations.inbox(p, parse(InboxQuery, req.query)));
  });

  router.get('/inbox/counts', async (_req, res) => {
    const p = requireStaff(res);
    res.json(await deps.conversations.inboxCounts(p));
  });

  router.get('/conversations/:conversationId', async (req, res) => {
    const p = requirePrincipal(res);
    const { conversationId } = parse(Params, req.params);
    if (p.kind === 'staff') res.json(toSummary(await deps.conversations.read(p, conversationId)));
    else res.json(toConstituentView(await deps.conversations.get(p, conversationId)));
  });

  router.get('/conversations/:conversationId/messages', async (req, res) => {
    const p = requirePrincipal(res);
    const { conversationId } = parse(Params, req.params);
    const { afterSeq, limit } = parse(SyncQuery, req.query);
    res.setHeader('Cache-Control', 'no-store');
    res.json(await deps.messages.sync(p, conversationId, afterSeq, limit));
  });

  router.post('/conversations/:conversationId/messages', async (req, res) => {
    const p = requirePrincipal(res);
    const { conversationId } = parse(Params, req.params);
    const body = parse(SendMessageBody, req.body);
    const result = await deps.messages.send(p, { conversationId, ...body });
    res.status(result.created ? 201 : 200).json(result);
  });

  router.post('/conversations/:conversationId/claim', async (req, res) => {
    const p = requireStaff(res);
    const { conversationId } = parse(Params, req.params);
    res.json(await deps.conversations.claim(p, conversationId));
  });

  router.post('/conversations/:conversationId/transfer', async (req, res) => {
    const p = requireStaff(res);
    const { conversationId } = parse(Params, req.params);
    const body = req.body && typeof req.body === 'object' ? req.body : {};
    res.json(await deps.conversations.transfer(p, parse(TransferInput, { ...body, conversationId })));
  });

  router.post('/conversations/:conversationId/case', async (req, res) => {
    const p = requireStaff(res);
    const { conversationId } = parse(Params, req.params);
    const { reference } = parse(CaseReferenceInput, req.body);
    res.json(await deps.conversations.moveToCase(p, conversationId, reference));
  });

  router.post('/conversations/:conversationId/join', async (req, res) => {
    const p = requireStaff(res);
    const { conversationId } = parse(Params, req.params);
    res.json(await deps.conversations.join(p, conversationId));
  });

  router.post('/conversations/:conversationId/end', async (req, res) => {
    const p = requirePrincipal(res);
    const { conversationId } = parse(Params, req.params);
    res.json(await deps.conversations.end(p, conversationId));
  });
  router.post('/conversations/:conversationId/rating', async (req, res) => {
    const p = requireConstituent(res);
    const { conversationId } = parse(Params, req.params);
    const { score, comment } = parse(RatingInput, req.body);
    await deps.conversations.rate(p, conversationId, score, comment);
    res.status(204).end();
  });

  router.post('/conversations/:conversationId/transcript/email', async (req, res) => {
    const p = requireConstituent(res);
    const { conversationId } = parse(Params, req.params);
    const { email } = parse(TranscriptEmailInput, req.body);
    await deps.conversations.emailTranscript(p, conversationId, email);
    res.status(202).json({ sent: true });
  });

  router.get('/conversations/:conversationId/transcript', async (req, res) => {
    const p = requirePrincipal(res);
    const { conversationId } = parse(Params, req.params);
    const { filename, text } = await deps.conversations.transcript(p, conversationId);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="${filename.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
    res.send(text);
  });

  return router;
}
