import { createHash, randomBytes } from 'node:crypto';
import { and, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import * as oidc from 'openid-client';
import type { Db } from '../../db/client.js';
import { groupMemberships, ssoStates, userIdentities, users } from '../../db/schema.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import { hashToken } from '../auth/auth.service.js';
import type { SessionRepository } from '../auth/session.repository.js';
import type { AgencyProvider, SsoSettingsService } from './sso-settings.service.js';

/** Why a single sign-on did not finish; the sign-in page turns each into words (never the provider's own text). */
export type SsoFailureReason =
  | 'not_configured'
  | 'provider_unreachable'
  | 'state_invalid'
  | 'state_replayed'
  | 'state_expired'
  | 'browser_mismatch'
  | 'provider_error'
  | 'token_invalid'
  | 'email_unverified'
  | 'no_account'
  | 'wrong_agency'
  | 'disabled'
  | 'no_role';

export class SsoFailure extends Error {
  constructor(
    readonly reason: SsoFailureReason,
    readonly agencyId: string | null = null,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(reason);
    this.name = 'SsoFailure';
  }
}

const STATE_TTL_MS = 10 * 60_000;
const DISCOVERY_TTL_MS = 10 * 60_000;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

type Claims = Record<string, unknown>;

/**
 * Staff sign-in through the agency's OpenID Connect provider (issue #11): authorization code with PKCE (S256),
 * state and nonce, using openid-client. A sign-in in flight is a database row (any node may finish it), bound to
 * the browser that started it by a cookie, and used at most once. The session is an ordinary staff session
 * (the same table, token hash, CSRF token and cookie as a password sign-in).
 */
export class SsoService {
  private readonly configs = new Map<string, { at: number; key: string; config: Promise<oidc.Configuration> }>();
  private readonly now: () => number;

  constructor(
    private readonly d: {
      db: Db;
      settings: SsoSettingsService;
      sessions: SessionRepository;
      audit: AuditRepository;
      logger: Logger;
      redirectUri: string;
      sessionMaxMs: number;
      now?: () => number;
    },
  ) {
    this.now = d.now ?? Date.now;
  }

  /** Where to send the browser to sign in, and the value its binding cookie must hold. */
  async start(provider: AgencyProvider, next: string | undefined): Promise<{ url: string; browserToken: string }> {
    const config = await this.config(provider);
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const browserToken = randomBytes(24).toString('base64url');
    // Old, never-finished attempts go as new ones come.
    await this.d.db.delete(ssoStates).where(lt(ssoStates.expiresAt, new Date(this.now() - STATE_TTL_MS).toISOString()));
    await this.d.db.insert(ssoStates).values({
      stateHash: sha256(state),
      agencyId: provider.agencyId,
      browserHash: sha256(browserToken),
      codeVerifier,
      nonce,
      next: next ?? null,
      expiresAt: new Date(this.now() + STATE_TTL_MS).toISOString(),
    });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.d.redirectUri,
      scope: 'openid email profile',
      response_type: 'code',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, browserToken };
  }

  /**
   * Finishes a sign-in from the provider's redirect. The state is claimed (used) before anything else, so a
   * replayed redirect fails even if the first one is still running. Returns the staff member to open a session for.
   */
  async finish(
    callbackUrl: URL,
    browserToken: string | undefined,
  ): Promise<{ userId: string; agencyId: string; next: string | null; detail: Record<string, unknown> }> {
    const state = callbackUrl.searchParams.get('state');
    if (!state || state.length > 200) throw new SsoFailure('state_invalid');
    const [claimed] = await this.d.db
      .update(ssoStates)
      .set({ usedAt: sql`now()` })
      .where(and(eq(ssoStates.stateHash, sha256(state)), isNull(ssoStates.usedAt)))
      .returning();
    if (!claimed) {
      const [seen] = await this.d.db.select({ agencyId: ssoStates.agencyId }).from(ssoStates).where(eq(ssoStates.stateHash, sha256(state)));
      throw new SsoFailure(seen ? 'state_replayed' : 'state_invalid', seen?.agencyId ?? null);
    }
    const agencyId = claimed.agencyId;
    if (Date.parse(claimed.expiresAt) <= this.now()) throw new SsoFailure('state_expired', agencyId);
    if (!browserToken || sha256(browserToken) !== claimed.browserHash) throw new SsoFailure('browser_mismatch', agencyId);
    if (callbackUrl.searchParams.get('error')) {
      throw new SsoFailure('provider_error', agencyId, { error: callbackUrl.searchParams.get('error')?.slice(0, 60) });
    }
    const provider = await this.d.settings.byAgency(agencyId);
    if (!provider) throw new SsoFailure('not_configured', agencyId);
    const config = await this.config(provider);

    let claims: Claims;
    let issuer: string;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: claimed.codeVerifier,
        expectedState: state,
        expectedNonce: claimed.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims();
      if (!idClaims) throw new Error('no ID token');
      claims = { ...idClaims };
      issuer = idClaims.iss;
      // Providers often put roles, groups or the email in userinfo only; the ID token's subject must match it.
      if (tokens.access_token && config.serverMetadata().userinfo_endpoint) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub).catch(() => undefined);
        if (info) claims = { ...info, ...idClaims };
      }
    } catch (err) {
      // Wrong issuer, audience, signature, nonce, an expired token, a reused code: openid-client says which.
      // openid-client wraps oauth4webapi's error, whose cause names the claim at fault (iss, aud, exp, nonce…).
      type Failure = { code?: unknown; message?: unknown; claim?: unknown; cause?: Failure };
      const e = err as Failure;
      const inner = e.cause && typeof e.cause === 'object' ? e.cause : e;
      const claim = [e.cause?.claim, inner.cause?.claim].find((c) => typeof c === 'string');
      throw new SsoFailure('token_invalid', agencyId, {
        check: typeof e.code === 'string' ? e.code : 'unknown',
        claim,
        message: typeof inner.message === 'string' ? inner.message.slice(0, 160) : undefined,
      });
    }
    const user = await this.resolveUser(provider, issuer, claims);
    return { userId: user.id, agencyId, next: claimed.next, detail: { method: 'oidc', issuer, ...user.detail } };
  }

  /** Opens an ordinary staff session (the cookie holds the token, the table its SHA-256). */
  async openSession(userId: string): Promise<{ token: string; sessionId: string; maxAgeMs: number }> {
    const token = randomBytes(32).toString('base64url');
    const session = await this.d.sessions.create({
      userId,
      tokenHash: hashToken(token),
      csrfToken: randomBytes(24).toString('base64url'),
      expiresAt: new Date(this.now() + this.d.sessionMaxMs),
    });
    return { token, sessionId: session.id, maxAgeMs: this.d.sessionMaxMs };
  }

  /**
   * The staff member behind the claims: the one already linked to this issuer + subject; else the agency's
   * account with this (verified) email, which is then linked; else, if the agency allows it, a new account.
   * Mapped claims set the role and the mapped groups at every sign-in (the provider is the source of truth).
   */
  private async resolveUser(
    provider: AgencyProvider,
    issuer: string,
    claims: Claims,
  ): Promise<{ id: string; detail: Record<string, unknown> }> {
    const s = provider.settings;
    const agencyId = provider.agencyId;
    const subject = String(claims.sub);
    const values = (name: string) => {
      const v = claims[name];
      return (Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[\s,]+/) : []).filter((x): x is string => typeof x === 'string' && x !== '');
    };
    const roleValues = values(s.roleClaim);
    const mappedRole = s.roleMap.find((m) => roleValues.includes(m.value))?.role;
    if (s.roleMap.length && !mappedRole) throw new SsoFailure('no_role', agencyId, { subject });
    const groupValues = values(s.groupClaim);
    const mappedGroups = [...new Set(s.groupMap.filter((m) => groupValues.includes(m.value)).map((m) => m.groupId))];

    let provisioned = false;
    const [linked] = await this.d.db
      .select({ user: users })
      .from(userIdentities)
      .innerJoin(users, eq(users.id, userIdentities.userId))
      .where(and(eq(userIdentities.issuer, issuer), eq(userIdentities.subject, subject)));
    let user = linked?.user;
    if (!user) {
      const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : '';
      // Matching by email would let anyone who can set an unverified address at the provider take an account.
      if (!email || claims.email_verified !== true) throw new SsoFailure('email_unverified', agencyId, { subject });
      const [byEmail] = await this.d.db.select().from(users).where(sql`lower(${users.email}) = ${email}`);
      if (byEmail && byEmail.agencyId !== agencyId) throw new SsoFailure('wrong_agency', agencyId, { subject });
      if (byEmail) user = byEmail;
      else {
        if (!s.provisionUsers || !mappedRole) throw new SsoFailure('no_account', agencyId, { subject });
        const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 100) : email;
        const [created] = await this.d.db
          .insert(users)
          .values({ agencyId, email, displayName: name, role: mappedRole, passwordHash: '!sso-only' })
          .onConflictDoNothing({ target: users.email })
          .returning();
        if (!created) throw new SsoFailure('no_account', agencyId, { subject });
        user = created;
        provisioned = true;
      }
      await this.d.db.insert(userIdentities).values({ issuer, subject, userId: user.id }).onConflictDoNothing();
    }
    if (user.agencyId !== agencyId) throw new SsoFailure('wrong_agency', agencyId, { subject });
    if (user.disabledAt) throw new SsoFailure('disabled', agencyId, { userId: user.id });

    const detail: Record<string, unknown> = { provisioned };
    if (mappedRole && mappedRole !== user.role) {
      await this.d.db.update(users).set({ role: mappedRole, allGroups: mappedRole === 'supervisor' ? user.allGroups : false }).where(eq(users.id, user.id));
      detail.role = `${user.role} → ${mappedRole}`;
    }
    if (s.groupMap.length) {
      // Only the groups the map names are the provider's to decide; other memberships stay as admins set them.
      const managed = [...new Set(s.groupMap.map((m) => m.groupId))];
      await this.d.db.transaction(async (tx) => {
        await tx.delete(groupMemberships).where(and(eq(groupMemberships.userId, user.id), inArray(groupMemberships.groupId, managed)));
        if (mappedGroups.length) await tx.insert(groupMemberships).values(mappedGroups.map((groupId) => ({ groupId, userId: user.id }))).onConflictDoNothing();
      });
      detail.groups = mappedGroups.length;
    }
    return { id: user.id, detail };
  }

  /** Discovery is fetched once per provider setting and kept for ten minutes. */
  private config(provider: AgencyProvider): Promise<oidc.Configuration> {
    const s = provider.settings;
    const key = `${s.issuer}|${s.clientId}|${s.clientSecretSealed ?? ''}`;
    const cached = this.configs.get(provider.agencyId);
    if (cached && cached.key === key && this.now() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    const issuer = new URL(s.issuer);
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname);
    const config = oidc
      .discovery(
        issuer,
        s.clientId,
        undefined,
        provider.clientSecret ? oidc.ClientSecretBasic(provider.clientSecret) : oidc.None(),
        { timeout: 10, ...(loopback ? { execute: [oidc.allowInsecureRequests] } : {}) },
      )
      .catch((err: unknown) => {
        this.configs.delete(provider.agencyId);
        const e = err as { code?: unknown; message?: unknown };
        this.d.logger.warn({ agencyId: provider.agencyId, code: e.code }, 'OpenID provider discovery failed');
        // A discovery document naming another issuer is refused here (openid-client checks it).
        throw new SsoFailure('provider_unreachable', provider.agencyId, {
          check: typeof e.code === 'string' ? e.code : 'unknown',
          message: typeof e.message === 'string' ? e.message.slice(0, 160) : undefined,
        });
      });
    this.configs.set(provider.agencyId, { at: this.now(), key, config });
    return config;
  }
}

/** Keeps the sign-in page's "next" to a console page of ours. */
export function safeNext(next: unknown): string | undefined {
  return typeof next === 'string' && /^\/console\/[\w/-]{0,200}$/.test(next) ? next : undefined;
}
