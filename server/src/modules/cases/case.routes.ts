import { Router } from 'express';
import { z } from 'zod';
import { CaseUpdateInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { CaseService } from './case.service.js';

const Params = z.object({ caseId: z.uuid() });

export function caseRoutes(deps: { cases: CaseService }): Router {
  const router = Router();

  router.get('/cases/:caseId', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    res.json(await deps.cases.detail(p, caseId));
  });

  router.patch('/cases/:caseId', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    res.json(await deps.cases.update(p, caseId, parse(CaseUpdateInput, req.body)));
  });

  return router;
}
