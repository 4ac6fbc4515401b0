import { Router } from 'express';
import { RoutingFacts, RoutingRulesInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { CaseTypeService } from '../case-types/case-type.service.js';
import type { RoutingRulesService } from './routing-rules.service.js';

/** Routing rules: admins edit the ordered list; supervisors and admins read it and preview a decision. */
export function routingRoutes(deps: { rules: RoutingRulesService; caseTypes: CaseTypeService; agencies: AgencyRepository }): Router {
  const router = Router();

  router.get('/admin/routing-rules', async (_req, res) => {
    res.json({ rules: await deps.rules.list(requireStaff(res)) });
  });

  router.put('/admin/routing-rules', async (req, res) => {
    const p = requireStaff(res);
    res.json({ rules: await deps.rules.replace(p, parse(RoutingRulesInput, req.body)) });
  });

  // "Where would this go?": the same decision new work gets, with the same fallback.
  router.post('/admin/routing-rules/test', async (req, res) => {
    const p = requireStaff(res);
    const facts = parse(RoutingFacts, req.body);
    const type = facts.caseTypeId ? await deps.caseTypes.get(p.agencyId, facts.caseTypeId) : undefined;
    const fallback = type?.defaultGroupId ?? (await deps.agencies.defaultGroupId(p.agencyId)) ?? null;
    res.json(await deps.rules.preview(p, facts, fallback));
  });

  return router;
}
