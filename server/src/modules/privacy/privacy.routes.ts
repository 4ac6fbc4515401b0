import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { requireConstituent, requireStaff } from '../../http/principal.js';
import type { PrivacyService } from './privacy.service.js';

const Note = z.string().trim().max(1000).default('');
const PortalRequestInput = z.strictObject({ note: Note });
const StaffRequestInput = z.strictObject({
  caseReference: z.string().trim().min(1, 'Enter the reference of one of their cases').max(40),
  note: Note,
});
const DecisionInput = z.strictObject({ note: z.string().trim().max(1000).default('') });
const DenyInput = z.strictObject({ note: z.string().trim().min(1, 'Say why the request is denied (the constituent may ask)').max(1000) });
const Params = z.object({ id: z.uuid() });

/** The constituent's export and deletion request (portal), and admins' review of deletion requests (issue #11). */
export function privacyRoutes(deps: { privacy: PrivacyService }): Router {
  const router = Router();

  router.get('/portal/my-data', async (_req, res) => {
    const p = requireConstituent(res);
    const data = await deps.privacy.export(p);
    res.setHeader('Content-Disposition', `attachment; filename="my-data-${data.exportedAt.slice(0, 10)}.json"`);
    res.json(data);
  });

  router.post('/portal/deletion-requests', async (req, res) => {
    const p = requireConstituent(res);
    res.status(201).json(await deps.privacy.requestFromPortal(p, parse(PortalRequestInput, req.body ?? {}).note));
  });

  const admin = (res: Parameters<typeof requireStaff>[0]) => {
    const p = requireStaff(res);
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins handle deletion requests');
    return p;
  };
  router.get('/admin/deletion-requests', async (_req, res) => {
    res.json({ requests: await deps.privacy.list(admin(res)) });
  });
  router.post('/admin/deletion-requests', async (req, res) => {
    const p = admin(res);
    const input = parse(StaffRequestInput, req.body);
    res.status(201).json(await deps.privacy.recordForCase(p, input.caseReference, input.note));
  });
  router.post('/admin/deletion-requests/:id/approve', async (req, res) => {
    const p = admin(res);
    const { id } = parse(Params, req.params);
    res.json(await deps.privacy.approve(p, id, parse(DecisionInput, req.body ?? {}).note));
  });
  router.post('/admin/deletion-requests/:id/deny', async (req, res) => {
    const p = admin(res);
    const { id } = parse(Params, req.params);
    res.json(await deps.privacy.deny(p, id, parse(DenyInput, req.body).note));
  });

  return router;
}
