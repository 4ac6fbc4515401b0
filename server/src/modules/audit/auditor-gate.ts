import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../../errors.js';
import { auth } from '../../http/principal.js';

/**
 * What an auditor may call (issue #11): read and export the audit log and the signed purge reports, know who
 * they are, sign out. Nothing else — no conversations, cases, queues, settings or changes of any kind. Checked
 * once here, before every API route, so a route added later is closed to auditors until it is listed.
 */
const AUDITOR_ROUTES: [method: string, path: RegExp][] = [
  ['GET', /^\/auth\/me$/],
  ['POST', /^\/auth\/logout$/],
  ['GET', /^\/admin\/audit$/],
  ['GET', /^\/admin\/purge-reports(\/[\w-]+(\/verify)?)?$/],
  // The names of the agency's groups and case types (configuration, no personal data): the console loads them.
  ['GET', /^\/groups$/],
  ['GET', /^\/case-types$/],
];

export function auditorGate() {
  return (req: Request, res: Response, next: NextFunction) => {
    const a = auth(res);
    if (a?.principal.kind === 'staff' && a.principal.role === 'auditor') {
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      if (!AUDITOR_ROUTES.some(([m, p]) => m === method && p.test(req.path))) {
        throw new AppError('FORBIDDEN', 'Auditors read the audit log and purge reports only');
      }
    }
    next();
  };
}
