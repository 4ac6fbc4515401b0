import { Router } from 'express';
import { AgencyCalendar } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import { AppError } from '../../errors.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { AgencyRepository } from './agency.repository.js';

/** The agency's calendar (hours and holidays): every staff member reads it, admins change it. */
export function agencyRoutes(deps: { agencies: AgencyRepository; audit: AuditRepository }): Router {
  const router = Router();

  router.get('/calendar', async (_req, res) => {
    const p = requireStaff(res);
    const agency = await deps.agencies.findById(p.agencyId);
    if (!agency) throw new AppError('NOT_FOUND', 'Agency not found');
    const body: AgencyCalendar = { businessHours: agency.businessHours ?? null, holidays: agency.holidays };
    res.json(body);
  });

  router.put('/admin/calendar', async (req, res) => {
    const p = requireStaff(res);
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change the agency calendar');
    const input = parse(AgencyCalendar, req.body);
    const holidays = [...new Set(input.holidays)].sort();
    await deps.agencies.setCalendar(p.agencyId, input.businessHours, holidays);
    await deps.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'agency.calendar_update',
      objectType: 'agency',
      objectId: p.agencyId,
      outcome: 'success',
    });
    res.json({ businessHours: input.businessHours, holidays } satisfies AgencyCalendar);
  });

  return router;
}
