import { Router } from 'express';
import { z } from 'zod';
import { NewStaffInput, PasswordResetInput, PresenceInput, ReportQuery, StaffAccessInput, StaffCapacityInput, StaffPresenceInput } from '@casebridge/shared';
import type { ReportService } from '../reports/report.service.js';
import type { DashboardService } from '../dashboard/dashboard.service.js';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { PresenceService } from './presence.service.js';
import type { StaffAccessService } from './staff-access.service.js';
import type { AuditRepository } from '../audit/audit.repository.js';

/** Colleagues, groups and presence: what the console needs to show who is there and to transfer work. */
export function staffRoutes(deps: {
  presence: PresenceService;
  agencies: AgencyRepository;
  dashboard: DashboardService;
  reports: ReportService;
  access: StaffAccessService;
  audit: AuditRepository;
}): Router {
  const router = Router();

  const UserParams = z.object({ userId: z.uuid() });
  router.get('/admin/users', async (_req, res) => {
    res.json({ users: await deps.access.list(requireStaff(res)) });
  });

  router.post('/admin/users', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await deps.access.create(p, parse(NewStaffInput, req.body)));
  });

  router.put('/admin/users/:userId/access', async (req, res) => {
    const p = requireStaff(res);
    const { userId } = parse(UserParams, req.params);
    res.json(await deps.access.set(p, userId, parse(StaffAccessInput, req.body)));
  });

  router.post('/admin/users/:userId/password', async (req, res) => {
    const p = requireStaff(res);
    const { userId } = parse(UserParams, req.params);
    await deps.access.resetPassword(p, userId, parse(PasswordResetInput, req.body).password);
    res.status(204).end();
  });

  router.post('/admin/users/:userId/enable', async (req, res) => {
    const p = requireStaff(res);
    const { userId } = parse(UserParams, req.params);
    await deps.access.enable(p, userId);
    res.status(204).end();
  });

  router.get('/reports', async (req, res) => {
    const p = requireStaff(res);
    const q = parse(ReportQuery, req.query);
    const report = await deps.reports.report(p, q);
    if (q.format === 'csv') {
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="casebridge-report-${q.from}-to-${q.to}.csv"`);
      const csv = deps.reports.csv(report);
      await deps.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'report.export', objectType: 'report', objectId: `${q.from}..${q.to}`, outcome: 'success', detail: { format: 'csv' } });
      res.send(csv);
      return;
    }
    res.json(report);
  });

  router.get('/dashboard', async (_req, res) => {
    res.json(await deps.dashboard.snapshot(requireStaff(res)));
  });

  router.put('/staff/:userId/capacity', async (req, res) => {
    const p = requireStaff(res);
    const { userId } = parse(z.object({ userId: z.uuid() }), req.params);
    await deps.presence.setCapacity(p, userId, parse(StaffCapacityInput, req.body));
    res.status(204).end();
  });

  router.put('/staff/:userId/presence', async (req, res) => {
    const p = requireStaff(res);
    const { userId } = parse(z.object({ userId: z.uuid() }), req.params);
    const { presence } = parse(StaffPresenceInput, req.body);
    res.json(await deps.presence.setFor(p, userId, presence));
  });

  router.get('/staff', async (_req, res) => {
    const p = requireStaff(res);
    res.json({ staff: await deps.presence.colleagues(p) });
  });

  router.get('/groups', async (_req, res) => {
    const p = requireStaff(res);
    res.json({ groups: await deps.agencies.listGroups(p.agencyId) });
  });

  router.get('/canned-responses', async (_req, res) => {
    const p = requireStaff(res);
    res.json({ cannedResponses: await deps.agencies.cannedResponses(p.agencyId) });
  });

  router.put('/me/presence', async (req, res) => {
    const p = requireStaff(res);
    const { presence } = parse(PresenceInput, req.body);
    res.json(await deps.presence.set(p, presence));
  });

  return router;
}
