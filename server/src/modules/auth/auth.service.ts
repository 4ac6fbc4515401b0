import { createHash, randomBytes } from 'node:crypto';
import type { Me } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { Limiter } from '../../lib/rate-limit.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { UserRepository } from '../users/user.repository.js';
import { dummyPasswordHash, verifyPassword } from './password.js';
import type { SessionRepository } from './session.repository.js';

export interface SessionEvents {
  /** Close every socket of these sessions / users now (logout, disable). */
  sessionEnded(target: { sessionId?: string; userId?: string }, reason: 'logout' | 'disabled' | 'expired' | 'revoked'): void;
}

export interface AuthDeps {
  sessions: SessionRepository;
  users: UserRepository;
  audit: AuditRepository;
  events: SessionEvents;
  loginFailuresPerIp: Limiter;
  loginFailuresPerAccount: Limiter;
  idleMs: number;
  maxMs: number;
  now?: () => number;
  /** False when the user's agency has turned local passwords off (they sign in through its provider, #11). */
  passwordsAllowed?: (agencyId: string) => Promise<boolean>;
}

export interface AuthenticatedSession {
  principal: StaffPrincipal;
  csrfToken: string;
  /** When the session was last marked active: `touch` writes only when this is a minute old. */
  lastSeenAt: string;
}

const TOUCH_EVERY_MS = 60_000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Staff sign-in, server-side sessions with idle and absolute expiry, sign-out and account disable. */
export class AuthService {
  private readonly now: () => number;
  constructor(private readonly d: AuthDeps) {
    this.now = d.now ?? Date.now;
  }

  async login(email: string, password: string, ip: string): Promise<{ token: string; me: Me; maxAgeMs: number }> {
    await this.d.loginFailuresPerIp.check(ip, 'Too many failed sign-in attempts from this network. Please wait and try again.');
    await this.d.loginFailuresPerAccount.check(email, 'Too many failed sign-in attempts for this account. Please wait and try again.');
    const user = await this.d.users.findByEmail(email);
    // Verify even for unknown emails so timing does not reveal which accounts exist.
    const ok = await verifyPassword(user?.passwordHash ?? (await dummyPasswordHash()), password);
    if (!user || !ok || user.disabledAt) {
      await this.d.loginFailuresPerIp.consume(ip).catch(() => undefined);
      await this.d.loginFailuresPerAccount.consume(email).catch(() => undefined);
      await this.d.audit.record({
        agencyId: user?.agencyId ?? null,
        actorKind: 'anonymous',
        actorId: user?.id ?? null,
        action: 'auth.login',
        outcome: 'failure',
        sourceIp: ip,
        detail: { reason: !user ? 'unknown_account' : user.disabledAt ? 'disabled' : 'bad_password' },
      });
      throw new AppError('UNAUTHENTICATED', 'Email or password is incorrect');
    }
    if (this.d.passwordsAllowed && !(await this.d.passwordsAllowed(user.agencyId))) {
      await this.d.audit.record({
        agencyId: user.agencyId,
        actorKind: 'anonymous',
        actorId: user.id,
        action: 'auth.login',
        outcome: 'failure',
        sourceIp: ip,
        detail: { reason: 'passwords_off' },
      });
      throw new AppError('FORBIDDEN', 'Your agency signs in through its identity provider: use the single sign-on button');
    }
    await this.d.loginFailuresPerAccount.reset(email);
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const session = await this.d.sessions.create({
      userId: user.id,
      tokenHash: hashToken(token),
      csrfToken,
      expiresAt: new Date(this.now() + this.d.maxMs),
    });
    await this.d.audit.record({
      agencyId: user.agencyId,
      actorKind: 'staff',
      actorId: user.id,
      action: 'auth.login',
      objectType: 'session',
      objectId: session.id,
      outcome: 'success',
      sourceIp: ip,
    });
    const me = await this.me(user.id, csrfToken);
    return { token, me, maxAgeMs: this.d.maxMs };
  }

  /** Resolves a session cookie to its principal; expired sessions are revoked on the spot. */
  async authenticate(token: string | undefined): Promise<AuthenticatedSession | undefined> {
    if (!token || token.length > 200) return undefined;
    const found = await this.d.sessions.findActive(hashToken(token));
    if (!found) return undefined;
    return this.validate(found.session, found.user);
  }

  /** Re-checks a session by id (open sockets do this periodically and before acting). */
  async recheck(sessionId: string): Promise<AuthenticatedSession | undefined> {
    const found = await this.d.sessions.findById(sessionId);
    if (!found || found.session.revokedAt) return undefined;
    return this.validate(found.session, found.user);
  }

  private async validate(
    session: Awaited<ReturnType<SessionRepository['create']>>,
    user: NonNullable<Awaited<ReturnType<UserRepository['findById']>>>,
  ): Promise<AuthenticatedSession | undefined> {
    const now = this.now();
    const idleFor = now - Date.parse(session.lastSeenAt);
    if (user.disabledAt || now >= Date.parse(session.expiresAt) || idleFor >= this.d.idleMs) {
      await this.d.sessions.revoke(session.id);
      this.d.events.sessionEnded({ sessionId: session.id }, user.disabledAt ? 'disabled' : 'expired');
      return undefined;
    }
    const groups = await this.d.users.visibleGroupsOf(user);
    return {
      principal: {
        kind: 'staff',
        userId: user.id,
        agencyId: user.agencyId,
        role: user.role,
        displayName: user.displayName,
        groupIds: groups.map((g) => g.id),
        sessionId: session.id,
      },
      csrfToken: session.csrfToken,
      lastSeenAt: session.lastSeenAt,
    };
  }

  /** Marks activity; written at most once a minute per session. */
  async touch(sessionId: string, lastSeenAt?: string): Promise<void> {
    if (lastSeenAt && this.now() - Date.parse(lastSeenAt) < TOUCH_EVERY_MS) return;
    await this.d.sessions.touch(sessionId);
  }

  async me(userId: string, csrfToken: string): Promise<Me> {
    const user = await this.d.users.findById(userId);
    if (!user) throw new AppError('UNAUTHENTICATED', 'Not signed in');
    return {
      id: user.id,
      agencyId: user.agencyId,
      agencyName: await this.d.users.agencyName(user.agencyId),
      email: user.email,
      displayName: user.displayName,
      role: user.role,
      presence: user.presence,
      capacity: user.capacity,
      groups: await this.d.users.visibleGroupsOf(user),
      csrfToken,
    };
  }

  async logout(principal: StaffPrincipal, ip: string): Promise<void> {
    await this.d.sessions.revoke(principal.sessionId);
    this.d.events.sessionEnded({ sessionId: principal.sessionId }, 'logout');
    await this.d.audit.record({
      agencyId: principal.agencyId,
      actorKind: 'staff',
      actorId: principal.userId,
      action: 'auth.logout',
      objectType: 'session',
      objectId: principal.sessionId,
      outcome: 'success',
      sourceIp: ip,
    });
  }

  /** Admin only: disables the account, revokes its sessions and closes its open sockets. */
  async disableUser(actor: StaffPrincipal, userId: string, ip: string): Promise<void> {
    if (actor.role !== 'admin') {
      await this.d.audit.record({
        agencyId: actor.agencyId,
        actorKind: 'staff',
        actorId: actor.userId,
        action: 'user.disable',
        objectType: 'user',
        objectId: userId,
        outcome: 'denied',
        sourceIp: ip,
      });
      throw new AppError('FORBIDDEN', 'Only an agency admin can disable accounts');
    }
    if (userId === actor.userId) throw new AppError('CONFLICT', 'You cannot disable your own account');
    const target = await this.d.users.findById(userId);
    if (!target || target.agencyId !== actor.agencyId) throw new AppError('NOT_FOUND', 'User not found');
    await this.d.users.disable(actor.agencyId, userId);
    await this.d.sessions.revokeAllForUser(userId);
    this.d.events.sessionEnded({ userId }, 'disabled');
    await this.d.audit.record({
      agencyId: actor.agencyId,
      actorKind: 'staff',
      actorId: actor.userId,
      action: 'user.disable',
      objectType: 'user',
      objectId: userId,
      outcome: 'success',
      sourceIp: ip,
    });
  }
}
