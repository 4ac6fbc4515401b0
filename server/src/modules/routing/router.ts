import type { Db, Tx } from '../../db/client.js';
import type { Logger } from '../../lib/logger.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { CaseRepository } from '../cases/case.repository.js';
import { toSummary } from '../conversations/conversation.mapper.js';
import type { ConversationRepository } from '../conversations/conversation.repository.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import { kindOf, type Candidate, type RoutingMode, type RoutingRepository } from './routing.repository.js';

export interface RouterDeps {
  now: () => Date;
  /** Marks an agent away (they let routed work lapse) and tells the agency. */
  setAway: (userId: string) => Promise<void>;
  /** The case assignment follows the conversation back to the queue. */
  unassignCase: (tx: Tx, caseId: string, fromUserId: string) => Promise<void>;
  db: Db;
  routing: RoutingRepository;
  conversations: ConversationRepository;
  cases: Pick<CaseRepository, 'assign' | 'addEvent'>;
  notifier: Notifier;
  /** Tells the constituents still waiting their new place in line. */
  announceQueue: (groupId: string) => Promise<void>;
  logger: Logger;
  /** A voice conversation was routed to an agent: put the waiting caller through to them. */
  callAssigned?: (conversationId: string, userId: string) => void;
  /** A constituent waiting by text is told it is their turn (see the conversation service's hook). */
  agentReady?: (conversationId: string, agentName: string) => Promise<void>;
  /** Automatic assignments and give-backs are audited like an agent's own claim (issue #11). */
  audit?: Pick<AuditRepository, 'record'>;
}

/** Who gets the next conversation: the least loaded (then longest without new work), or simply the next in turn. */
export function rank(mode: RoutingMode, candidates: Candidate[]): Candidate[] {
  // Never given work counts as idle longest of all.
  const idle = (c: Candidate) => (c.lastAssignedAt ? new Date(c.lastAssignedAt).getTime() : Number.NEGATIVE_INFINITY);
  return candidates
    .filter((c) => c.load < c.capacity)
    .sort((a, b) => (mode === 'least_busy' ? a.load - b.load : 0) || idle(a) - idle(b) || a.id.localeCompare(b.id));
}

type Step = { kind: 'assigned'; conversationId: string } | { kind: 'empty' } | { kind: 'full' } | { kind: 'retry' };

/**
 * Automatic assignment within a group. Each assignment is one transaction holding the conversation (skipped by
 * other nodes while held) and the chosen agent's row (so their load is counted under a lock): a conversation
 * never gets two owners and no agent goes past their capacity, however many nodes route at once. Each
 * assignment records why: the mode, who was eligible with their load, and who was chosen.
 */
export class Router {
  private readonly running = new Map<string, Promise<number>>();

  constructor(private readonly d: RouterDeps) {}

  /** Routes a group's queue until it is empty or nobody has room; one pass per group at a time on this node. */
  dispatch(groupId: string): Promise<number> {
    const current = this.running.get(groupId);
    if (current) return current.then(() => this.dispatch(groupId));
    const pass = this.pass(groupId).finally(() => this.running.delete(groupId));
    this.running.set(groupId, pass);
    return pass;
  }

  /** An agent has room again (came back, finished a conversation): try every group they work. */
  async agentFreed(userId: string): Promise<void> {
    for (const g of await this.d.routing.groupsOf(userId)) await this.dispatch(g);
  }

  /** The safety net the timers run: every routed group with someone waiting. */
  async sweep(): Promise<number> {
    let n = 0;
    for (const g of await this.d.routing.routedGroupsWithQueue()) n += await this.dispatch(g);
    return n;
  }

  /** An agent went offline: what they hold but never answered goes back to the queue, keeping its place. */
  async agentWentOffline(userId: string): Promise<number> {
    let n = 0;
    for (const c of await this.d.conversations.unansweredOf(userId)) {
      if (await this.giveBack(c.id, c.caseId, userId, 'agent_offline')) n++;
    }
    return n;
  }

  /**
   * Routed work nobody answered within the group's accept time goes back to the queue; the agent who let it
   * lapse is set away, so routing does not hand it straight back to someone who is not there.
   */
  async expireUnaccepted(): Promise<number> {
    let n = 0;
    const lapsed = await this.d.conversations.unacceptedBefore(this.d.now().toISOString());
    for (const c of lapsed) if (await this.giveBack(c.id, c.caseId, c.assigneeId!, 'not_accepted')) n++;
    for (const userId of new Set(lapsed.map((c) => c.assigneeId!))) await this.d.setAway(userId);
    for (const groupId of new Set(lapsed.map((c) => c.groupId))) await this.dispatch(groupId);
    return n;
  }

  private async giveBack(id: string, caseId: string, fromUserId: string, reason: 'agent_offline' | 'not_accepted'): Promise<boolean> {
    const row = await this.d.db.transaction(async (tx) => {
      const r = await this.d.conversations.returnToQueue(tx, id, fromUserId);
      if (!r) return undefined;
      await this.d.unassignCase(tx, caseId, fromUserId);
      await this.d.cases.addEvent(tx, {
        caseId,
        kind: 'conversation.returned',
        actorKind: 'system',
        actorUserId: fromUserId,
        conversationId: id,
        data: { reason },
      });
      await this.d.audit?.record(
        { agencyId: r.agencyId, actorKind: 'system', actorId: null, action: 'conversation.unassign', objectType: 'conversation', objectId: id, outcome: 'success', detail: { fromUserId, reason } },
        tx,
      );
      return r;
    });
    if (!row) return false;
    const view = await this.d.conversations.findView(id);
    if (view) this.d.notifier.conversationUpdated(toSummary(view), { groupId: row.groupId, assigneeId: fromUserId });
    if (reason === 'agent_offline') await this.dispatch(row.groupId);
    else await this.d.announceQueue(row.groupId).catch(() => undefined);
    return true;
  }

  private async pass(groupId: string): Promise<number> {
    const group = await this.d.routing.group(groupId);
    if (!group || group.routing === 'manual') return 0;
    let assigned = 0;
    let retries = 0;
    while (assigned < 500) {
      const step = await this.step(groupId, group.name, group.routing).catch((err: unknown) => {
        this.d.logger.warn({ err, groupId }, 'routing step failed; the next trigger retries');
        return { kind: 'full' } as Step;
      });
      if (step.kind === 'empty' || step.kind === 'full') break;
      if (step.kind === 'retry') {
        if (++retries > 10) break;
        continue;
      }
      assigned++;
      const view = await this.d.conversations.findView(step.conversationId);
      if (view) this.d.notifier.conversationUpdated(toSummary(view));
      if (view?.channel === 'voice' && view.assigneeId) this.d.callAssigned?.(view.id, view.assigneeId);
      if (view?.textIdentityId && view.assigneeName) void this.d.agentReady?.(view.id, view.assigneeName).catch(() => undefined);
    }
    if (assigned) await this.d.announceQueue(groupId).catch(() => undefined);
    return assigned;
  }

  private step(groupId: string, groupName: string, mode: RoutingMode): Promise<Step> {
    return this.d.db.transaction(async (tx): Promise<Step> => {
      const conv = await this.d.routing.lockNextQueued(tx, groupId);
      if (!conv) return { kind: 'empty' };
      const kind = kindOf(conv.channel);
      const candidates = await this.d.routing.candidates(tx, groupId, kind);
      const chosen = rank(mode, candidates)[0];
      if (!chosen) return { kind: 'full' };
      // The load read above may be stale by now: count again under the agent's lock.
      const locked = await this.d.routing.lockAgentLoad(tx, chosen.id, kind);
      if (!locked || !locked.available || locked.load >= locked.capacity) return { kind: 'retry' };
      const row = await this.d.conversations.claim(conv.id, chosen.id, tx, 'routing');
      if (!row) return { kind: 'retry' };
      await this.d.cases.assign(tx, row.caseId, chosen.id);
      await this.d.cases.addEvent(tx, {
        caseId: row.caseId,
        kind: 'conversation.assigned',
        actorKind: 'system',
        conversationId: row.id,
        data: {
          assigneeId: chosen.id,
          reason: 'routed',
          mode,
          group: groupName,
          kind,
          chosen: { name: chosen.name, load: locked.load, capacity: locked.capacity },
          eligible: candidates.map((c) => ({ name: c.name, load: c.load, capacity: c.capacity })),
        },
      });
      await this.d.audit?.record(
        { agencyId: row.agencyId, actorKind: 'system', actorId: null, action: 'conversation.assign', objectType: 'conversation', objectId: row.id, outcome: 'success', detail: { assigneeId: chosen.id, reason: 'routed', mode } },
        tx,
      );
      return { kind: 'assigned', conversationId: row.id };
    });
  }
}
