import { Router } from 'express';
import { z } from 'zod';
import { Language, PortalCodeRequest, PortalReply, PortalRequest, PortalSignIn } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireConstituent } from '../../http/principal.js';
import type { PortalService } from './portal.service.js';

const Slug = z.object({ slug: z.string().min(1).max(60) });
const Ref = z.object({ reference: z.string().min(1).max(40) });
const LangQuery = z.object({ lang: Language.default('en') });

/** The constituent portal's API: anonymous for the catalog, codes and requests; a constituent token for a case. */
export function portalRoutes(deps: { portal: PortalService }): Router {
  const router = Router();
  const ip = (req: { ip?: string }) => req.ip ?? 'unknown';

  router.get('/portal/agencies', async (_req, res) => {
    res.json({ agencies: await deps.portal.agencies() });
  });

  router.get('/portal/agencies/:slug', async (req, res) => {
    const { slug } = parse(Slug, req.params);
    const { lang } = parse(LangQuery, req.query);
    res.json(await deps.portal.catalog(slug, lang));
  });

  router.post('/portal/codes', async (req, res) => {
    await deps.portal.requestCode(parse(PortalCodeRequest, req.body), ip(req));
    res.status(202).json({ ok: true });
  });

  router.post('/portal/sessions', async (req, res) => {
    res.status(201).json(await deps.portal.signIn(parse(PortalSignIn, req.body), ip(req)));
  });

  router.post('/portal/requests', async (req, res) => {
    res.status(201).json(await deps.portal.startRequest(parse(PortalRequest, req.body), ip(req)));
  });

  router.get('/portal/cases/:reference', async (req, res) => {
    const p = requireConstituent(res);
    const { reference } = parse(Ref, req.params);
    res.json(await deps.portal.view(p, reference));
  });

  // Uploads go to the case's portal conversation: this opens it (or finds it) and says which it is.
  router.post('/portal/cases/:reference/conversation', async (req, res) => {
    const p = requireConstituent(res);
    const { reference } = parse(Ref, req.params);
    res.json({ conversationId: await deps.portal.conversationFor(p, reference) });
  });

  router.post('/portal/cases/:reference/messages', async (req, res) => {
    const p = requireConstituent(res);
    const { reference } = parse(Ref, req.params);
    const input = parse(PortalReply, req.body);
    const result = await deps.portal.reply(p, reference, input);
    res.status(result.created ? 201 : 200).json(await deps.portal.view(p, reference));
  });

  return router;
}
