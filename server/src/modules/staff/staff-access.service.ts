import type { NewStaffInput, Role, StaffAccessInput, StaffAccount } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import { hashPassword } from '../auth/password.js';
import type { SessionRepository } from '../auth/session.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { UserRepository, UserRow } from '../users/user.repository.js';

type Access = { role: Role; groupIds: string[]; allGroups: boolean };

/**
 * Who may see what: admins open accounts for colleagues and change their role and groups. Every command
 * re-reads the principal, and the colleague's open sockets (on any node) leave the rooms they lost at once, so
 * they stop hearing that data without signing in again.
 */
export class StaffAccessService {
  constructor(
    private readonly d: {
      users: UserRepository;
      sessions: Pick<SessionRepository, 'revokeAllForUser'>;
      audit: AuditRepository;
      notifier: Notifier;
      /** A colleague's sessions were revoked: their open sockets close. */
      sessionsEnded: (userId: string) => void;
    },
  ) {}

  async list(p: StaffPrincipal): Promise<StaffAccount[]> {
    admin(p);
    return (await this.d.users.accounts(p.agencyId)).map(({ disabledAt, ...u }) => ({ ...u, disabled: disabledAt !== null }));
  }

  async create(p: StaffPrincipal, input: NewStaffInput): Promise<StaffAccount> {
    admin(p);
    const access = await this.checkedAccess(p, input);
    const user = await this.d.users.create({
      agencyId: p.agencyId,
      email: input.email,
      displayName: input.displayName,
      role: access.role,
      allGroups: access.allGroups,
      passwordHash: await hashPassword(input.password),
      groupIds: access.groupIds,
    });
    if (!user) throw fieldError('CONFLICT', 'email', 'An account with this email already exists');
    await this.record(p, 'staff.create', user.id, { role: access.role, groups: access.groupIds, allGroups: access.allGroups });
    return account(user, access.groupIds);
  }

  async set(p: StaffPrincipal, userId: string, input: StaffAccessInput): Promise<Access> {
    admin(p);
    const user = await this.colleague(p, userId);
    if (user.disabledAt) throw new AppError('CONFLICT', 'This account is disabled');
    if (userId === p.userId && input.role !== 'admin') {
      throw new AppError('CONFLICT', 'You cannot remove your own admin role: ask another admin');
    }
    const access = await this.checkedAccess(p, input);
    const before = { role: user.role, groupIds: (await this.d.users.groupsOf(userId)).map((g) => g.id), allGroups: user.allGroups };
    const seenBefore = (await this.d.users.visibleGroupsOf(user)).map((g) => g.id);
    await this.d.users.setAccess(userId, access.role, access.groupIds, access.allGroups);
    const seenAfter = (await this.d.users.visibleGroupsOf({ ...user, role: access.role, allGroups: access.allGroups })).map((g) => g.id);
    await this.record(p, 'staff.access_change', userId, {
      role: before.role === access.role ? access.role : `${before.role} → ${access.role}`,
      added: access.groupIds.filter((g) => !before.groupIds.includes(g)),
      removed: before.groupIds.filter((g) => !access.groupIds.includes(g)),
      ...(before.allGroups !== access.allGroups ? { allGroups: access.allGroups } : {}),
    });
    this.d.notifier.accessChanged({ userId, agencyId: p.agencyId }, { role: before.role, groupIds: seenBefore }, { role: access.role, groupIds: seenAfter });
    return access;
  }

  /** A new group: agency-wide supervisors' open consoles (on every node) start hearing it at once. */
  async groupAdded(agencyId: string, groupId: string): Promise<void> {
    for (const u of await this.d.users.accounts(agencyId)) {
      if (u.role !== 'supervisor' || !u.allGroups || u.disabledAt) continue;
      this.d.notifier.accessChanged({ userId: u.id, agencyId }, { role: u.role, groupIds: [] }, { role: u.role, groupIds: [groupId] });
    }
  }

  /** A colleague who forgot their password: a new one from the admin, and every session of theirs ends. */
  async resetPassword(p: StaffPrincipal, userId: string, password: string): Promise<void> {
    admin(p);
    const user = await this.colleague(p, userId);
    await this.d.users.setPassword(user.id, await hashPassword(password));
    await this.d.sessions.revokeAllForUser(user.id);
    this.d.sessionsEnded(user.id);
    await this.record(p, 'staff.password_reset', user.id, {});
  }

  async enable(p: StaffPrincipal, userId: string): Promise<void> {
    admin(p);
    await this.colleague(p, userId);
    if (!(await this.d.users.enable(p.agencyId, userId))) throw new AppError('CONFLICT', 'This account is not disabled');
    await this.record(p, 'user.enable', userId, {});
  }

  private async colleague(p: StaffPrincipal, userId: string): Promise<UserRow> {
    const user = await this.d.users.findById(userId);
    if (!user || user.agencyId !== p.agencyId) throw new AppError('NOT_FOUND', 'No such colleague');
    return user;
  }

  /** The groups must be the agency's; seeing every group is a supervisor's scope only. */
  private async checkedAccess(p: StaffPrincipal, input: { role: Role; groupIds: string[]; allGroups?: boolean }): Promise<Access> {
    const wanted = [...new Set(input.groupIds)];
    const known = new Set(await this.d.users.agencyGroupIds(p.agencyId, wanted));
    const bad = wanted.findIndex((id) => !known.has(id));
    if (bad >= 0) throw fieldError('INVALID_PAYLOAD', ['groupIds', input.groupIds.indexOf(wanted[bad]!)], 'Not a group of this agency');
    if (input.allGroups && input.role !== 'supervisor') {
      throw fieldError('INVALID_PAYLOAD', 'allGroups', 'Only supervisors can see every group');
    }
    return { role: input.role, groupIds: wanted, allGroups: input.allGroups ?? false };
  }

  private record(p: StaffPrincipal, action: string, userId: string, detail: Record<string, unknown>) {
    return this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action,
      objectType: 'user',
      objectId: userId,
      outcome: 'success',
      detail,
    });
  }
}

function admin(p: StaffPrincipal): void {
  if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins manage staff accounts');
}

function fieldError(code: 'INVALID_PAYLOAD' | 'CONFLICT', path: string | (string | number)[], message: string): AppError {
  return new AppError(code, message, { issues: [{ path: Array.isArray(path) ? path : [path], message }] });
}

function account(u: UserRow, groupIds: string[]): StaffAccount {
  return {
    id: u.id,
    email: u.email,
    displayName: u.displayName,
    role: u.role,
    groupIds,
    allGroups: u.allGroups,
    presence: u.presence,
    disabled: u.disabledAt !== null,
    createdAt: u.createdAt,
  };
}
