import type { Presence, PresenceChanged, StaffMember } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { ConversationRepository } from '../conversations/conversation.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { UserRepository } from '../users/user.repository.js';

export interface PresenceDeps {
  users: UserRepository;
  conversations: Pick<ConversationRepository, 'activeCountByAssignee'>;
  notifier: Notifier;
  /** Is any socket of this user still connected, on any node? */
  isConnected(userId: string): Promise<boolean>;
  /** A reload drops the socket for a moment; wait this long before calling someone offline. */
  offlineGraceMs: number;
  /** Someone became available: routing may give them waiting work. */
  becameAvailable?: (userId: string) => void;
  /** Someone went offline: what they never answered goes back to the queue. */
  wentOffline?: (userId: string) => void;
  audit?: AuditRepository;
}

/**
 * Staff presence. Signing in (a first socket) makes an offline agent available; losing every socket makes
 * them offline; in between, the agent chooses available or away. Nobody gets new work unless available.
 */
export class PresenceService {
  private readonly pending = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly d: PresenceDeps) {}

  /**
   * The node is shutting down: its sockets closing says nothing about whether people left (they reconnect to
   * another node), so no one is marked offline for it.
   */
  stop(): void {
    this.stopped = true;
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }

  async set(p: StaffPrincipal, presence: Presence): Promise<PresenceChanged> {
    await this.d.users.setPresence(p.userId, presence);
    const change = { userId: p.userId, presence };
    this.d.notifier.presenceChanged(p.agencyId, change);
    if (presence === 'available') this.d.becameAvailable?.(p.userId);
    return change;
  }

  /** Runs in the handshake, before the socket counts as connected, so availability is right at once. */
  async connected(p: StaffPrincipal): Promise<void> {
    const now = await this.d.users.setPresence(p.userId, 'available', ['offline']);
    if (now) this.d.notifier.presenceChanged(p.agencyId, { userId: p.userId, presence: now });
    if (now === 'available') this.d.becameAvailable?.(p.userId);
  }

  disconnected(p: StaffPrincipal): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.pending.delete(timer);
      void (async () => {
        if (await this.d.isConnected(p.userId)) return;
        const now = await this.d.users.setPresence(p.userId, 'offline', ['available', 'away']);
        if (now) this.d.notifier.presenceChanged(p.agencyId, { userId: p.userId, presence: now });
        if (now === 'offline') this.d.wentOffline?.(p.userId);
      })().catch(() => undefined);
    }, this.d.offlineGraceMs);
    timer.unref();
    this.pending.add(timer);
  }

  /**
   * A supervisor changes a colleague's status (someone left their desk showing available). Only for agents of
   * the supervisor's own groups; admins for anyone. Anyone else: not found.
   */
  /** A colleague a supervisor manages: in one of their groups (admins: anyone). Anyone else is not found. */
  private async managed(p: StaffPrincipal, userId: string) {
    if (p.role === 'agent') throw new AppError('FORBIDDEN', 'Only supervisors manage colleagues');
    const staff = await this.d.users.listStaff(p.agencyId);
    const target = staff.find((u) => u.id === userId);
    const inMyGroups = target && (p.role === 'admin' || target.groupIds.some((g) => p.groupIds.includes(g)));
    if (!target || !inMyGroups) throw new AppError('NOT_FOUND', 'Colleague not found');
    return target;
  }

  /** More room means routing may hand them waiting work at once. */
  async setCapacity(p: StaffPrincipal, userId: string, input: { capacity: number; voiceCapacity?: number }): Promise<void> {
    await this.managed(p, userId);
    await this.d.users.setCapacity(userId, input);
    await this.d.audit?.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'staff.capacity_update',
      objectType: 'user',
      objectId: userId,
      outcome: 'success',
      detail: input,
    });
    this.d.becameAvailable?.(userId);
  }

  async setFor(p: StaffPrincipal, userId: string, presence: Presence): Promise<PresenceChanged> {
    await this.managed(p, userId);
    await this.d.users.setPresence(userId, presence);
    const change = { userId, presence };
    this.d.notifier.presenceChanged(p.agencyId, change);
    if (presence === 'available') this.d.becameAvailable?.(userId);
    return change;
  }

  /** Routing found them not answering: away until they say they are back. */
  async markAway(userId: string): Promise<void> {
    const user = await this.d.users.findById(userId);
    if (!user) return;
    const now = await this.d.users.setPresence(userId, 'away', ['available']);
    if (now) this.d.notifier.presenceChanged(user.agencyId, { userId, presence: now });
  }

  async colleagues(p: StaffPrincipal): Promise<StaffMember[]> {
    const [staff, load] = await Promise.all([
      this.d.users.listStaff(p.agencyId),
      this.d.conversations.activeCountByAssignee(p.agencyId),
    ]);
    return staff.map((u) => ({ ...u, activeCount: load.get(u.id) ?? 0 }));
  }
}
