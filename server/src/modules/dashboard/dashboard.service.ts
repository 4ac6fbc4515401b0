import { DateTime } from 'luxon';
import type { Dashboard } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import { Coalescer } from '../../lib/coalesce.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { DashboardRepository } from './dashboard.repository.js';

/**
 * The supervisor's live view. Supervisors see their groups, admins the whole agency; agents none of it.
 * One snapshot per call; the console asks again (coalesced) when something changes.
 */
export class DashboardService {
  // Twenty supervisors watching the same groups cost one snapshot per change, not twenty.
  private readonly shared = new Coalescer<Dashboard>();

  constructor(private readonly d: { dashboard: DashboardRepository; agencies: AgencyRepository; now: () => Date }) {}

  private async scope(p: StaffPrincipal): Promise<string[]> {
    if (p.role === 'agent') throw new AppError('FORBIDDEN', 'The dashboard is for supervisors');
    if (p.role === 'admin') return (await this.d.agencies.listGroups(p.agencyId)).map((g) => g.id);
    return p.groupIds;
  }

  async snapshot(p: StaffPrincipal): Promise<Dashboard> {
    const groupIds = await this.scope(p);
    const key = `${p.agencyId}:${[...groupIds].sort().join(',')}`;
    return this.shared.get(key, () => this.compute(p.agencyId, groupIds));
  }

  private async compute(agencyId: string, groupIds: string[]): Promise<Dashboard> {
    const now = this.d.now();
    const agency = await this.d.agencies.findById(agencyId);
    // "Today" is the agency's day, in its own time zone.
    const since = DateTime.fromJSDate(now, { zone: agency?.businessHours?.timezone ?? 'UTC' }).startOf('day').toUTC().toISO()!;
    const [groups, agents, today] = await Promise.all([
      this.d.dashboard.groupFigures(groupIds, since),
      this.d.dashboard.agentsOf(groupIds),
      this.d.dashboard.today(groupIds, since),
    ]);
    const secs = (v: number | null) => (v === null ? null : Math.round(v));
    return {
      groups: groups.map((g) => ({
        id: g.id,
        name: g.name,
        routing: g.routing,
        waiting: g.waiting,
        longestWaitSeconds: g.oldest ? Math.max(0, Math.round((now.getTime() - new Date(g.oldest).getTime()) / 1000)) : 0,
        averageWaitTodaySeconds: secs(g.averageWait),
        active: g.active,
        agents: agents.filter((a) => a.group_id === g.id).map(({ id, name, presence, load, capacity }) => ({ id, name, presence, load, capacity })),
        slaAtRisk: g.atRisk,
        slaBreached: g.breached,
      })),
      today: {
        conversations: today.conversations,
        byChannel: today.byChannel,
        byCaseType: today.byCaseType,
        firstResponseMedianSeconds: secs(today.firstResponse),
        resolutionMedianSeconds: secs(today.resolution),
        abandoned: today.abandoned,
        satisfaction: today.satisfaction === null ? null : Math.round(today.satisfaction * 10) / 10,
        ratings: today.ratings,
      },
      generatedAt: now.toISOString(),
    };
  }
}
