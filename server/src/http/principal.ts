import type { NextFunction, Request, Response } from 'express';
import { parse as parseCookie } from 'cookie';
import { AppError } from '../errors.js';
import type { AuthService } from '../modules/auth/auth.service.js';
import type { ConstituentPrincipal, Principal, StaffPrincipal } from '../modules/principal.js';
import type { WidgetService } from '../modules/widget/widget.service.js';

export interface RequestAuth {
  principal: Principal;
  /** Present for cookie sessions: state changes must echo it in x-csrf-token. */
  csrfToken?: string;
  lastSeenAt?: string;
}

export function sessionCookieName(secure: boolean): string {
  // __Host- pins the cookie to our exact origin, but browsers accept it only over https.
  return secure ? '__Host-cb_session' : 'cb_session';
}

export function readSessionCookie(cookieHeader: string | undefined, secure: boolean): string | undefined {
  if (!cookieHeader) return undefined;
  return parseCookie(cookieHeader)[sessionCookieName(secure)];
}

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Resolves who is calling: a widget token (Authorization: Bearer) or a staff session cookie.
 * Cookie-authenticated state changes must carry the session's CSRF token and, when the browser
 * sends one, our own Origin.
 */
export function resolvePrincipal(deps: {
  auth: AuthService;
  widget: WidgetService;
  ownOrigins: string[];
  secureCookies: boolean;
}) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const token = bearer(req);
    if (token) {
      const principal = await deps.widget.authenticate(token);
      if (!principal) throw new AppError('UNAUTHENTICATED', 'Your chat session is no longer valid. Please start a new chat.');
      res.locals.auth = { principal } satisfies RequestAuth;
      return next();
    }
    const cookieToken = readSessionCookie(req.headers.cookie, deps.secureCookies);
    if (cookieToken) {
      const session = await deps.auth.authenticate(cookieToken);
      if (session) {
        if (!SAFE_METHODS.has(req.method)) {
          const origin = req.headers.origin;
          if (origin && !deps.ownOrigins.includes(origin)) throw new AppError('CSRF_FAILED', 'Request origin not allowed');
          if (req.headers['x-csrf-token'] !== session.csrfToken) {
            throw new AppError('CSRF_FAILED', 'Missing or wrong x-csrf-token header');
          }
        }
        res.locals.auth = { principal: session.principal, csrfToken: session.csrfToken } satisfies RequestAuth;
        await deps.auth.touch(session.principal.sessionId, session.lastSeenAt);
      }
    }
    next();
  };
}

export function auth(res: Response): RequestAuth | undefined {
  return res.locals.auth as RequestAuth | undefined;
}

export function requirePrincipal(res: Response): Principal {
  const a = auth(res);
  if (!a) throw new AppError('UNAUTHENTICATED', 'Sign in first');
  return a.principal;
}

export function requireStaff(res: Response): StaffPrincipal {
  const p = requirePrincipal(res);
  if (p.kind !== 'staff') throw new AppError('FORBIDDEN', 'Staff only');
  return p;
}

export function requireConstituent(res: Response): ConstituentPrincipal {
  const p = requirePrincipal(res);
  if (p.kind !== 'constituent') throw new AppError('FORBIDDEN', 'This endpoint is for the chat widget');
  return p;
}
