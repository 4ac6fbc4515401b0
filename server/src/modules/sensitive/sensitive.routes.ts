import { Router } from 'express';
import { z } from 'zod';
import { SecureFieldRequestInput, SecureFieldValueInput, SensitivePatternsInput } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { requireConstituent, requireStaff } from '../../http/principal.js';
import type { SecureFields, SensitiveMasker } from './sensitive.service.js';

const Id = z.object({ id: z.uuid() });
const ConvId = z.object({ conversationId: z.uuid() });

/** Masking patterns (admins) and secure-field requests (agents ask, constituents answer, permitted staff reveal). */
export function trustRoutes(deps: { masker: SensitiveMasker; secureFields: SecureFields }): Router {
  const router = Router();

  router.get('/admin/sensitive-patterns', async (_req, res) => {
    const p = requireStaff(res);
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins see masking patterns');
    res.json({ patterns: await deps.masker.patterns(p.agencyId) });
  });

  router.put('/admin/sensitive-patterns', async (req, res) => {
    const p = requireStaff(res);
    const { patterns } = parse(SensitivePatternsInput, req.body);
    res.json({ patterns: await deps.masker.setPatterns(p, patterns) });
  });

  router.post('/conversations/:conversationId/secure-fields', async (req, res) => {
    const p = requireStaff(res);
    const { conversationId } = parse(ConvId, req.params);
    res.status(201).json(await deps.secureFields.request(p, conversationId, parse(SecureFieldRequestInput, req.body)));
  });

  // The widget (its token) and the portal (its session token) answer here: never as a chat message.
  router.post('/secure-fields/:id', async (req, res) => {
    const p = requireConstituent(res);
    const { id } = parse(Id, req.params);
    const { value } = parse(SecureFieldValueInput, req.body);
    res.status(201).json(await deps.secureFields.provide(p, id, value));
  });

  router.post('/secure-fields/:id/reveal', async (req, res) => {
    const p = requireStaff(res);
    const { id } = parse(Id, req.params);
    res.json(await deps.secureFields.reveal(p, id));
  });

  return router;
}
