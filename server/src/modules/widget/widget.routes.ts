import { Router } from 'express';
import { StartConversationInput, WidgetSessionInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireConstituent } from '../../http/principal.js';
import type { Limiter } from '../../lib/rate-limit.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { WidgetService } from './widget.service.js';

export function widgetRoutes(deps: {
  widget: WidgetService;
  conversations: ConversationService;
  conversationsPerIp: Limiter;
}): Router {
  const router = Router();

  router.post('/widget/session', async (req, res) => {
    const { agencyKey } = parse(WidgetSessionInput, req.body);
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json(await deps.widget.createSession(agencyKey, req.ip ?? 'unknown'));
  });

  router.get('/widget/availability', async (_req, res) => {
    const p = requireConstituent(res);
    res.json(await deps.widget.availabilityFor(p.agencyId));
  });

  router.post('/widget/conversations', async (req, res) => {
    const p = requireConstituent(res);
    const input = parse(StartConversationInput, req.body);
    const ip = req.ip ?? 'unknown';
    // Per IP: checked before, counted only when a conversation is really created (resuming one is free).
    await deps.conversationsPerIp.check(ip, 'Many chats have started from this network recently. Please wait before starting another.');
    const result = await deps.conversations.start(p, input);
    if (result.created) await deps.conversationsPerIp.consume(ip).catch(() => undefined);
    res.status(result.created ? 201 : 200).json(result);
  });

  return router;
}
