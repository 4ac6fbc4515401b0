import { Router } from 'express';
import { AuditQuery, type AuditEntry } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { AuditRepository } from './audit.repository.js';

/** Most rows one CSV export holds; narrow the dates for more. */
export const AUDIT_EXPORT_MAX = 50_000;

const COLUMNS: [keyof AuditEntry, string][] = [
  ['seq', 'Seq'],
  ['createdAt', 'Time (UTC)'],
  ['actorKind', 'Actor kind'],
  ['actorId', 'Actor id'],
  ['actorName', 'Actor'],
  ['actorRole', 'Role'],
  ['action', 'Action'],
  ['objectType', 'Object type'],
  ['objectId', 'Object id'],
  ['outcome', 'Outcome'],
  ['sourceIp', 'Source IP'],
  ['detail', 'Detail'],
];

export function auditCsv(entries: AuditEntry[]): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    // A leading = + - @ would run as a formula in a spreadsheet: prefix it.
    const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
    return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
  };
  const lines = [COLUMNS.map(([, h]) => h).join(','), ...entries.map((e) => COLUMNS.map(([k]) => cell(e[k])).join(','))];
  return `${lines.join('\r\n')}\r\n`;
}

/** The audit log of the agency: search with paging, or CSV export (itself audited). Admins and auditors only. */
export function auditRoutes(deps: { audit: AuditRepository }): Router {
  const router = Router();

  router.get('/admin/audit', async (req, res) => {
    const p = requireStaff(res);
    if (p.role !== 'admin' && p.role !== 'auditor') throw new AppError('FORBIDDEN', 'Only admins and auditors read the audit log');
    const q = parse(AuditQuery, req.query);
    if (q.from && q.to && q.from > q.to) throw new AppError('INVALID_PAYLOAD', 'The start date is after the end date', { issues: [{ path: ['from'], message: 'after the end date' }] });
    const filter = { agencyId: p.agencyId, actor: q.actor || undefined, action: q.action || undefined, objectType: q.objectType || undefined, objectId: q.objectId || undefined, outcome: q.outcome, from: q.from, to: q.to };
    if (q.format === 'csv') {
      const { entries, total } = await deps.audit.search(filter, AUDIT_EXPORT_MAX, 0);
      // Which filters were used, never their values (the actor filter may be an email address).
      const used = Object.entries(filter).filter(([k, v]) => k !== 'agencyId' && v !== undefined).map(([k]) => k);
      await deps.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'audit.export', objectType: 'audit_log', outcome: 'success', detail: { format: 'csv', rows: entries.length, total, filters: used } });
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="casebridge-audit-${q.from ?? 'start'}-to-${q.to ?? 'now'}.csv"`);
      if (total > entries.length) res.setHeader('X-Truncated', String(total));
      res.send(auditCsv(entries));
      return;
    }
    const { entries, total } = await deps.audit.search(filter, q.pageSize, (q.page - 1) * q.pageSize);
    res.json({ entries, total, page: q.page, pageSize: q.pageSize });
  });

  return router;
}
