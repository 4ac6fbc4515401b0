import { Router } from 'express';
import { z } from 'zod';
import { AgencyCalendar, GroupSettings, NewGroupInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import { AppError } from '../../errors.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { AgencyRepository } from './agency.repository.js';

/** The agency's calendar (hours and holidays): every staff member reads it, admins change it. */
export function agencyRoutes(deps: {
  agencies: AgencyRepository;
  audit: AuditRepository;
  /** A group now routes automatically: its waiting work may go out at once. */
  routingChanged: (groupId: string) => void;
  /** Agency-wide supervisors' open sockets start hearing the new group at once. */
  groupCreated?: (agencyId: string, groupId: string) => void;
}): Router {
  const router = Router();
  const admin = (res: Parameters<typeof requireStaff>[0]) => {
    const p = requireStaff(res);
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change agency settings');
    return p;
  };

  router.get('/admin/groups', async (_req, res) => {
    const p = admin(res);
    res.json({ groups: await deps.agencies.groupDetails(p.agencyId) });
  });

  router.post('/admin/groups', async (req, res) => {
    const p = admin(res);
    const { name } = parse(NewGroupInput, req.body);
    const created = await deps.agencies.createGroup(p.agencyId, name);
    if (!created) {
      const message = 'A group with this name already exists';
      throw new AppError('CONFLICT', message, { issues: [{ path: ['name'], message }] });
    }
    await deps.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'group.create',
      objectType: 'group',
      objectId: created.id,
      outcome: 'success',
      detail: { name },
    });
    deps.groupCreated?.(p.agencyId, created.id);
    res.status(201).json({ groups: await deps.agencies.groupDetails(p.agencyId) });
  });

  router.put('/admin/groups/:id', async (req, res) => {
    const p = admin(res);
    const { id } = parse(z.object({ id: z.uuid() }), req.params);
    const settings = parse(GroupSettings, req.body);
    if (!(await deps.agencies.setGroupRouting(p.agencyId, id, settings))) throw new AppError('NOT_FOUND', 'Group not found');
    await deps.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'group.routing_update',
      objectType: 'group',
      objectId: id,
      outcome: 'success',
      detail: settings,
    });
    deps.routingChanged(id);
    res.json({ groups: await deps.agencies.groupDetails(p.agencyId) });
  });

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
