import { Router } from 'express';
import { serialize } from 'cookie';
import { LoginInput } from '@casebridge/shared';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { auth, requireStaff, sessionCookieName } from '../../http/principal.js';
import type { AuthService } from './auth.service.js';

export function authRoutes(deps: { auth: AuthService; secureCookies: boolean }): Router {
  const router = Router();
  const cookieName = sessionCookieName(deps.secureCookies);
  const cookie = (value: string, maxAgeSec: number) =>
    serialize(cookieName, value, {
      httpOnly: true,
      secure: deps.secureCookies,
      sameSite: 'lax',
      path: '/',
      maxAge: maxAgeSec,
    });

  router.post('/auth/login', async (req, res) => {
    const input = parse(LoginInput, req.body);
    const { token, me, maxAgeMs } = await deps.auth.login(input.email, input.password, req.ip ?? 'unknown');
    res.setHeader('Set-Cookie', cookie(token, Math.floor(maxAgeMs / 1000)));
    res.setHeader('Cache-Control', 'no-store');
    res.json(me);
  });

  router.get('/auth/me', async (_req, res) => {
    const a = auth(res);
    if (!a || a.principal.kind !== 'staff' || !a.csrfToken) throw new AppError('UNAUTHENTICATED', 'Not signed in');
    res.setHeader('Cache-Control', 'no-store');
    res.json(await deps.auth.me(a.principal.userId, a.csrfToken));
  });

  router.post('/auth/logout', async (req, res) => {
    const p = requireStaff(res);
    await deps.auth.logout(p, req.ip ?? 'unknown');
    res.setHeader('Set-Cookie', cookie('', 0));
    res.status(204).end();
  });

  const UserParams = z.object({ userId: z.uuid() });
  router.post('/admin/users/:userId/disable', async (req, res) => {
    const p = requireStaff(res);
    const { userId } = parse(UserParams, req.params);
    await deps.auth.disableUser(p, userId, req.ip ?? 'unknown');
    res.status(204).end();
  });

  return router;
}
