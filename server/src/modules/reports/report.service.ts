import { DateTime } from 'luxon';
import type { Report, ReportRow } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { ReportRepository } from './report.repository.js';

const COLUMNS: [keyof ReportRow, string][] = [
  ['kind', 'Kind'],
  ['name', 'Name'],
  ['conversations', 'Conversations'],
  ['abandoned', 'Abandoned'],
  ['firstResponseMedian', 'First response median (s)'],
  ['firstResponseP90', 'First response p90 (s)'],
  ['resolved', 'Resolved cases'],
  ['resolutionMedian', 'Resolution median (s)'],
  ['resolutionP90', 'Resolution p90 (s)'],
  ['slaCompliance', 'SLA compliance (%)'],
  ['satisfaction', 'Satisfaction (1-5)'],
  ['ratings', 'Ratings'],
];

/** Reports for supervisors (their groups) and admins (all groups), over the agency's calendar days. */
export class ReportService {
  constructor(private readonly d: { reports: ReportRepository; agencies: AgencyRepository }) {}

  async report(p: StaffPrincipal, q: { from: string; to: string; groupId?: string }): Promise<Report> {
    if (p.role === 'agent') throw new AppError('FORBIDDEN', 'Reports are for supervisors and admins');
    const all = (await this.d.agencies.listGroups(p.agencyId)).map((g) => g.id);
    const mine = p.role === 'admin' ? all : p.groupIds;
    if (q.groupId && !mine.includes(q.groupId)) throw new AppError('NOT_FOUND', 'Group not found');
    const groupIds = q.groupId ? [q.groupId] : mine;
    const agency = await this.d.agencies.findById(p.agencyId);
    const zone = agency?.businessHours?.timezone ?? 'UTC';
    // Whole local days: from the start of `from` to the start of the day after `to`.
    const start = DateTime.fromISO(q.from, { zone }).startOf('day').toUTC().toISO()!;
    const end = DateTime.fromISO(q.to, { zone }).plus({ days: 1 }).startOf('day').toUTC().toISO()!;
    const [groups, agents] = await Promise.all([
      this.d.reports.figures('group', groupIds, start, end),
      this.d.reports.figures('agent', groupIds, start, end),
    ]);
    return { from: q.from, to: q.to, rows: [...groups, ...agents] };
  }

  /** The same report as CSV, one line per group then per agent; values quoted where they need it. */
  csv(report: Report): string {
    const cell = (v: unknown) => {
      const s = v === null || v === undefined ? '' : String(v);
      // A leading = + - @ would run as a formula in a spreadsheet: prefix it.
      const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
      return /[",\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
    };
    const lines = [COLUMNS.map(([, h]) => h).join(','), ...report.rows.map((r) => COLUMNS.map(([k]) => cell(r[k])).join(','))];
    return `${lines.join('\r\n')}\r\n`;
  }
}
