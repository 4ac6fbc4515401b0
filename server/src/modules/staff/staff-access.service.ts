import type { Role, StaffAccessInput } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { UserRepository } from '../users/user.repository.js';

/**
 * Who may see what: an admin changes a colleague's role and groups. Every command re-reads the principal, and
 * the colleague's open sockets (on any node) leave the rooms they lost at once, so they stop hearing that data
 * without signing in again.
 */
export class StaffAccessService {
  constructor(private readonly d: { users: UserRepository; audit: AuditRepository; notifier: Notifier }) {}

  async set(p: StaffPrincipal, userId: string, input: StaffAccessInput): Promise<{ role: Role; groupIds: string[] }> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change roles and groups');
    const user = await this.d.users.findById(userId);
    if (!user || user.agencyId !== p.agencyId) throw new AppError('NOT_FOUND', 'No such colleague');
    if (user.disabledAt) throw new AppError('CONFLICT', 'This account is disabled');
    if (userId === p.userId && input.role !== 'admin') {
      throw new AppError('CONFLICT', 'You cannot remove your own admin role: ask another admin');
    }
    const wanted = [...new Set(input.groupIds)];
    const known = new Set(await this.d.users.agencyGroupIds(p.agencyId, wanted));
    const bad = wanted.findIndex((id) => !known.has(id));
    if (bad >= 0) {
      const message = 'Not a group of this agency';
      throw new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['groupIds', input.groupIds.indexOf(wanted[bad]!)], message }] });
    }
    const before = { role: user.role, groupIds: (await this.d.users.groupsOf(userId)).map((g) => g.id) };
    await this.d.users.setAccess(userId, input.role, wanted);
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'staff.access_change',
      objectType: 'user',
      objectId: userId,
      outcome: 'success',
      detail: {
        role: before.role === input.role ? input.role : `${before.role} → ${input.role}`,
        added: wanted.filter((g) => !before.groupIds.includes(g)),
        removed: before.groupIds.filter((g) => !wanted.includes(g)),
      },
    });
    this.d.notifier.accessChanged({ userId, agencyId: p.agencyId }, before, { role: input.role, groupIds: wanted });
    return { role: input.role, groupIds: wanted };
  }
}
