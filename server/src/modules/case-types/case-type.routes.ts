import { Router } from 'express';
import { z } from 'zod';
import { CaseTypeInput, Language, ServiceDefinitionInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireConstituent, requireStaff } from '../../http/principal.js';
import type { CaseTypeService } from './case-type.service.js';

const Params = z.object({ id: z.uuid() });
const UpdateBody = z.object({ version: z.number().int().positive() }).passthrough();
const LangQuery = z.object({ lang: Language.default('en') });

/** Case types and the service catalog: admins configure, staff read, constituents see the published catalog. */
export function caseTypeRoutes(deps: { caseTypes: CaseTypeService }): Router {
  const router = Router();

  router.get('/case-types', async (_req, res) => {
    res.json({ caseTypes: await deps.caseTypes.list(requireStaff(res)) });
  });

  router.post('/admin/case-types', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await deps.caseTypes.create(p, parse(CaseTypeInput, req.body)));
  });

  router.put('/admin/case-types/:id', async (req, res) => {
    const p = requireStaff(res);
    const { id } = parse(Params, req.params);
    const { version, ...rest } = parse(UpdateBody, req.body);
    res.json(await deps.caseTypes.update(p, id, version, parse(CaseTypeInput, rest)));
  });

  router.get('/services', async (_req, res) => {
    res.json({ services: await deps.caseTypes.listServices(requireStaff(res)) });
  });

  router.post('/admin/services', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await deps.caseTypes.createService(p, parse(ServiceDefinitionInput, req.body)));
  });

  router.put('/admin/services/:id', async (req, res) => {
    const p = requireStaff(res);
    const { id } = parse(Params, req.params);
    res.json(await deps.caseTypes.updateService(p, id, parse(ServiceDefinitionInput, req.body)));
  });

  router.get('/widget/services', async (req, res) => {
    const p = requireConstituent(res);
    const { lang } = parse(LangQuery, req.query);
    res.json({ services: await deps.caseTypes.publicCatalog(p.agencyId, 'web', lang) });
  });

  return router;
}
