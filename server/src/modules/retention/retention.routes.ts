import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { RetentionService } from './retention.service.js';

const CaseParams = z.object({ id: z.uuid() });
const ReportParams = z.object({ reportId: z.uuid() });
const HoldInput = z.strictObject({
  reason: z.string().trim().min(1, 'Say why the case is held (e.g. the matter or request it is held for)').max(300),
});

/** Legal hold on a case (admins set and clear it) and the signed purge reports (admins and auditors). */
export function retentionRoutes(deps: { retention: RetentionService }): Router {
  const router = Router();

  router.get('/cases/:id/legal-hold', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.retention.hold(p, parse(CaseParams, req.params).id));
  });
  router.put('/cases/:id/legal-hold', async (req, res) => {
    const p = requireStaff(res);
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins set or clear a legal hold');
    const { id } = parse(CaseParams, req.params);
    res.json(await deps.retention.setHold(p, id, parse(HoldInput, req.body).reason));
  });
  router.delete('/cases/:id/legal-hold', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.retention.clearHold(p, parse(CaseParams, req.params).id));
  });

  router.get('/admin/purge-reports', async (_req, res) => {
    res.json({ reports: await deps.retention.reports(requireStaff(res)) });
  });
  router.get('/admin/purge-reports/:reportId/verify', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.retention.verify(p, parse(ReportParams, req.params).reportId));
  });

  return router;
}
