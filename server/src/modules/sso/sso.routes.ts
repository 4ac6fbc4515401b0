import { Router, type Request } from 'express';
import { parse as parseCookie, serialize } from 'cookie';
import { SsoDiscoverInput, SsoSettingsInput, type SsoDiscovery } from '@casebridge/shared';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { requireStaff, sessionCookieName } from '../../http/principal.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { AgencyProvider, SsoSettingsService } from './sso-settings.service.js';
import { safeNext, SsoFailure, type SsoService } from './sso.service.js';

/**
 * Single sign-on routes (issue #11). The browser is sent to the provider and back with top-level navigations
 * (302s); failures land on the sign-in page with `?sso_error=<reason>`, which it puts into words.
 */
export function ssoRoutes(deps: {
  sso: SsoService;
  settings: SsoSettingsService;
  audit: AuditRepository;
  secureCookies: boolean;
  publicBaseUrl: string;
}): Router {
  const router = Router();
  const bindingCookie = deps.secureCookies ? '__Host-cb_sso' : 'cb_sso';
  const cookie = (name: string, value: string, maxAgeSec: number) =>
    serialize(name, value, { httpOnly: true, secure: deps.secureCookies, sameSite: 'lax', path: '/', maxAge: maxAgeSec });
  const startUrl = (slug: string) => `/api/auth/sso/start?agency=${encodeURIComponent(slug)}`;
  const discovery = (p: AgencyProvider | undefined): SsoDiscovery => ({
    sso: p
      ? { agencyName: p.agencyName, displayName: p.settings.displayName, startUrl: startUrl(p.agencySlug), passwordsOff: p.settings.passwordsOff }
      : null,
  });
  const back = (reason: string) => `/console/login?sso_error=${encodeURIComponent(reason)}`;

  // Which agency's provider an address signs in with (by its domain). Domains are public: nothing about accounts.
  router.post('/auth/sso/discover', async (req, res) => {
    const { email } = parse(SsoDiscoverInput, req.body);
    res.json(discovery(await deps.settings.byEmail(email)));
  });

  const SlugParams = z.object({ slug: z.string().regex(/^[a-z0-9-]{1,60}$/, 'An agency slug like springfield') });
  router.get('/auth/sso/agency/:slug', async (req, res) => {
    const { slug } = parse(SlugParams, req.params);
    res.json(discovery(await deps.settings.bySlug(slug)));
  });

  router.get('/auth/sso/start', async (req, res) => {
    const slug = typeof req.query.agency === 'string' && /^[a-z0-9-]{1,60}$/.test(req.query.agency) ? req.query.agency : '';
    const provider = slug ? await deps.settings.bySlug(slug) : undefined;
    if (!provider) return res.redirect(303, back('not_configured'));
    try {
      const { url, browserToken } = await deps.sso.start(provider, safeNext(req.query.next));
      res.setHeader('Set-Cookie', cookie(bindingCookie, browserToken, 600));
      res.redirect(303, url);
    } catch (err) {
      if (!(err instanceof SsoFailure)) throw err;
      await audit(req, err);
      res.redirect(303, back(err.reason));
    }
  });

  router.get('/auth/sso/callback', async (req, res) => {
    const here = new URL(req.originalUrl, deps.publicBaseUrl);
    const browserToken = parseCookie(req.headers.cookie ?? '')[bindingCookie];
    try {
      const who = await deps.sso.finish(here, browserToken);
      const session = await deps.sso.openSession(who.userId);
      await deps.audit.record({
        agencyId: who.agencyId,
        actorKind: 'staff',
        actorId: who.userId,
        action: 'auth.login',
        objectType: 'session',
        objectId: session.sessionId,
        outcome: 'success',
        sourceIp: req.ip,
        detail: who.detail,
      });
      res.setHeader('Set-Cookie', [
        cookie(sessionCookieName(deps.secureCookies), session.token, Math.floor(session.maxAgeMs / 1000)),
        cookie(bindingCookie, '', 0),
      ]);
      res.redirect(303, who.next ?? '/console');
    } catch (err) {
      if (!(err instanceof SsoFailure)) throw err;
      await audit(req, err);
      res.setHeader('Set-Cookie', cookie(bindingCookie, '', 0));
      res.redirect(303, back(err.reason));
    }
  });

  const audit = (req: Request, err: SsoFailure) =>
    deps.audit.record({
      agencyId: err.agencyId,
      actorKind: 'anonymous',
      actorId: typeof err.detail.userId === 'string' ? err.detail.userId : null,
      action: 'auth.login',
      outcome: 'failure',
      sourceIp: req.ip,
      detail: { method: 'oidc', reason: err.reason, ...err.detail },
    });

  router.get('/admin/sign-in', async (_req, res) => {
    res.json(await deps.settings.get(requireStaff(res)));
  });

  router.put('/admin/sign-in', async (req, res) => {
    const p = requireStaff(res);
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change the sign-in settings');
    res.json(await deps.settings.set(p, parse(SsoSettingsInput, req.body)));
  });

  return router;
}
