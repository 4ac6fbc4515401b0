import type {
  ConstituentConversation,
  ConversationStatus,
  ConversationSummary,
  InboxCounts,
  InboxPage,
  Message,
  StartConversationInput,
  Channel,
  Priority,
  RoutingDecision,
} from '@casebridge/shared';
import { InboxQuery } from '@casebridge/shared';
import type { z } from 'zod';
import type { Db, Tx } from '../../db/client.js';
import type { CaseRow } from '../cases/case.repository.js';
import { pgConstraint, pgErrorCode } from '../../db/client.js';
import type { Masker } from '../messages/message.service.js';
import { AppError } from '../../errors.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { CaseRepository } from '../cases/case.repository.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import type { MessageRepository } from '../messages/message.repository.js';
import type { ConstituentPrincipal, Principal, StaffPrincipal } from '../principal.js';
import { assertStaffCanAct, assertVisible } from './conversation.access.js';
import { toConstituentView, toMessage, toSummary } from './conversation.mapper.js';
import type { ConversationRepository, ConversationView, StaffScope } from './conversation.repository.js';
import type { UserRepository } from '../users/user.repository.js';
import type { CaseTypeService } from '../case-types/case-type.service.js';
import type { Mailer } from '../../lib/mailer.js';
import type { Limiter } from '../../lib/rate-limit.js';
import type { QueueService } from '../queue/queue.service.js';
import type { TextSender } from '../messages/message.service.js';
import { constituentText, languageOf, type ConstituentLanguage } from '../constituent-text.js';

/** What automatic routing hears about (bound late: the router is built after this service). */
export interface RoutingSignals {
  /** A group's queue got a new arrival. */
  queueChanged(groupId: string): void;
  /** An agent has room for more work. */
  agentFreed(userId: string): void;
}

export interface ConversationDeps {
  routing?: RoutingSignals;
  /** Masks sensitive numbers in the constituent's first message before it is stored (issue #11). */
  sensitive?: Masker;
  /** A constituent's answer on a case waiting for them (bound late to the case service). */
  constituentReplied?: (caseId: string) => Promise<void>;
  /** Which group (and priority) new work goes to, by the agency's routing rules. */
  decideRoute: (
    agencyId: string,
    facts: {
      serviceId: string | null;
      caseTypeId: string | null;
      channel: Channel;
      language: 'en' | 'es';
      priority: Priority;
      /** Asked only when a rule depends on it. */
      returning: boolean | (() => Promise<boolean>);
    },
    fallbackGroupId: string | null,
  ) => Promise<RoutingDecision>;
  /** Starts a new case's playbook and SLA clocks (bound late: the case service is built after this one). */
  caseStarted: (tx: Tx, kase: CaseRow) => Promise<void>;
  db: Db;
  conversations: ConversationRepository;
  messages: MessageRepository;
  cases: CaseRepository;
  constituents: ConstituentRepository;
  agencies: AgencyRepository;
  users: UserRepository;
  caseTypes: Pick<CaseTypeService, 'findPublished' | 'get' | 'answersFor'>;
  audit: AuditRepository;
  notifier: Notifier;
  queue: QueueService;
  /** New conversations one widget session may start per window (counted in the database, so every node agrees). */
  conversationsPerSession: { points: number; duration: number };
  mailer: Pick<Mailer, 'send'>;
  transcriptEmails: Limiter;
  now?: () => Date;
  /** A voice conversation was given to an agent: put the waiting caller through to them (bound to the call service). */
  callAssigned?: (conversationId: string, userId: string) => void;
  /** A voice conversation was ended: hang up its live call (bound to the call service; never throws). */
  callEnded?: (conversationId: string, byUserId: string | null) => void;
  /** What the agency tells a constituent also goes by text on conversations that text (bound late). */
  texts?: Pick<TextSender, 'deliveryFor' | 'deliver'>;
  /** An agent took a conversation: a constituent waiting by text is told it is their turn (bound late). */
  agentReady?: (conversationId: string, agentName: string) => Promise<void>;
}

type StartInput = Omit<Extract<StartConversationInput, object>, 'language' | 'offline'> & {
  language: 'en' | 'es';
  offline: boolean;
};

export class ConversationService {
  constructor(private readonly d: ConversationDeps) {}

  /** Loads a conversation the principal may see, or throws NOT_FOUND. */
  async get(p: Principal, id: string): Promise<ConversationView> {
    return assertVisible(p, await this.d.conversations.findView(id));
  }

  /** A staff member opens a conversation: every such read is audited (issue #11). */
  async read(p: StaffPrincipal, id: string): Promise<ConversationView> {
    const conv = await this.get(p, id);
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'conversation.read', objectType: 'conversation', objectId: conv.id, outcome: 'success', detail: { caseId: conv.caseId } });
    return conv;
  }

  async listForStaff(p: StaffPrincipal, status?: ConversationStatus): Promise<ConversationSummary[]> {
    return (await this.d.conversations.listForStaff(scopeOf(p), status, 200)).map(toSummary);
  }

  /** One page of an inbox view, with the cursor of the next page (null on the last). */
  async inbox(p: StaffPrincipal, q: z.output<typeof InboxQuery>): Promise<InboxPage> {
    const cursor = q.cursor ? decodeCursor(q.cursor) : undefined;
    const rows = await this.d.conversations.inbox(scopeOf(p), { ...q, cursor, limit: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return {
      conversations: page.map(toSummary),
      nextCursor: rows.length > q.limit && last ? encodeCursor(q.view === 'queue' ? last.createdAt : last.updatedAt, last.id) : null,
    };
  }

  async inboxCounts(p: StaffPrincipal): Promise<InboxCounts> {
    return this.d.conversations.inboxCounts(scopeOf(p));
  }

  /**
   * Hand a conversation to a colleague (it stays active, now theirs) or back to a group's queue (keeping its
   * place: the queue is ordered by arrival). The note is an internal message on the timeline.
   */
  async transfer(
    p: StaffPrincipal,
    input: { conversationId: string; toUserId?: string; toGroupId?: string; note?: string },
  ): Promise<ConversationSummary> {
    const conv = await this.get(p, input.conversationId);
    assertStaffCanAct(p, conv);
    if (conv.status === 'ended') throw new AppError('CONFLICT', 'This conversation has ended');

    let target: { groupId: string; assigneeId: string | null; label: string };
    if (input.toUserId) {
      const user = await this.d.users.findById(input.toUserId);
      if (!user || user.agencyId !== p.agencyId || user.disabledAt) {
        throw invalid('toUserId', 'No such colleague');
      }
      if (user.role === 'admin') throw invalid('toUserId', `${user.displayName} is an admin and does not take conversations`);
      if (user.role === 'auditor') throw invalid('toUserId', `${user.displayName} is an auditor and does not take conversations`);
      if (user.id === conv.assigneeId) throw invalid('toUserId', `${user.displayName} already has this conversation`);
      const theirGroups = (await this.d.users.visibleGroupsOf(user)).map((g) => g.id);
      if (theirGroups.length === 0) throw invalid('toUserId', `${user.displayName} is not in any group`);
      // Stays in its group when they work it; otherwise it follows them to their group.
      const groupId = theirGroups.includes(conv.groupId) ? conv.groupId : theirGroups[0]!;
      target = { groupId, assigneeId: user.id, label: user.displayName };
    } else {
      const group = await this.d.agencies.findGroup(p.agencyId, input.toGroupId!);
      if (!group) throw invalid('toGroupId', 'No such group');
      if (group.id === conv.groupId && conv.status === 'queued') {
        throw invalid('toGroupId', `This conversation is already waiting in ${group.name}`);
      }
      target = { groupId: group.id, assigneeId: null, label: group.name };
    }

    const moved = await this.d.db.transaction(async (tx) => {
      const row = await this.d.conversations.transfer(tx, conv.id, conv.version, target);
      if (!row) return undefined;
      await this.d.cases.reassign(tx, conv.caseId, { groupId: target.groupId, assigneeId: target.assigneeId });
      const note = input.note ? `: ${input.note}` : '';
      await this.d.messages.append(
        {
          conversationId: conv.id,
          clientMessageId: null,
          authorKind: 'system',
          visibility: 'internal',
          body: `${p.displayName} transferred this conversation to ${target.label}${note}`,
          channel: conv.channel,
        },
        tx,
      );
      await this.d.cases.addEvent(tx, {
        caseId: conv.caseId,
        kind: 'conversation.transferred',
        actorKind: 'agent',
        actorUserId: p.userId,
        conversationId: conv.id,
        data: {
          fromUserId: conv.assigneeId,
          fromGroupId: conv.groupId,
          toUserId: target.assigneeId,
          toGroupId: target.groupId,
          to: target.label,
          note: input.note ?? null,
        },
      });
      await this.d.audit.record(
        {
          agencyId: p.agencyId,
          actorKind: 'staff',
          actorId: p.userId,
          action: 'conversation.transfer',
          objectType: 'conversation',
          objectId: conv.id,
          outcome: 'success',
          detail: { toUserId: target.assigneeId, toGroupId: target.groupId },
        },
        tx,
      );
      return row;
    });
    if (!moved) throw new AppError('CONFLICT', 'This conversation changed while you were transferring it. Please try again.');

    const view = (await this.d.conversations.findView(conv.id))!;
    const summary = toSummary(view);
    const [note] = await this.d.messages.listAfter(conv.id, view.lastSeq - 1, 1, false);
    if (note) this.d.notifier.messageCreated(toMessage(note), view, conv);
    this.d.notifier.conversationUpdated(summary, conv);
    void this.announceQueue(target.groupId);
    if (conv.status === 'queued' && conv.groupId !== target.groupId) void this.announceQueue(conv.groupId);
    if (!target.assigneeId) this.d.routing?.queueChanged(target.groupId);
    if (conv.assigneeId && conv.assigneeId !== target.assigneeId) this.d.routing?.agentFreed(conv.assigneeId);
    return summary;
  }

  async listForConstituent(p: ConstituentPrincipal): Promise<ConstituentConversation[]> {
    const rows = await this.d.conversations.listForConstituent(p.constituentId);
    return rows.filter((r) => r.agencyId === p.agencyId).map(toConstituentView);
  }

  /**
   * A constituent starts a web conversation. Idempotent: while one is open for this widget session,
   * starting again returns it. Every conversation is linked to a case from its first moment.
   */
  async start(
    p: ConstituentPrincipal,
    input: StartInput,
  ): Promise<{ conversation: ConstituentConversation; message: Message | null; created: boolean }> {
    const agency = await this.d.agencies.findById(p.agencyId);
    if (!agency) throw new AppError('NOT_FOUND', 'Agency not found');
    // A service from the catalog decides the case type, and with it the reference prefix and the group.
    const service = input.serviceId ? await this.d.caseTypes.findPublished(p.agencyId, input.serviceId, 'web') : undefined;
    if (input.serviceId && !service) {
      throw new AppError('INVALID_PAYLOAD', 'That service is not offered here', {
        issues: [{ path: ['serviceId'], message: 'That service is not offered here' }],
      });
    }
    if (input.answers && Object.keys(input.answers).length && !service) {
      throw new AppError('INVALID_PAYLOAD', 'Choose a service before answering its questions', {
        issues: [{ path: ['answers'], message: 'Choose a service before answering its questions' }],
      });
    }
    const customFields = service && input.answers ? await this.d.caseTypes.answersFor(p.agencyId, service, input.answers, { partial: true }) : {};
    const caseType = service ? await this.d.caseTypes.get(p.agencyId, service.caseTypeId) : undefined;
    const fallback = caseType?.defaultGroupId ?? (await this.d.agencies.defaultGroupId(p.agencyId)) ?? null;
    const route = await this.d.decideRoute(
      p.agencyId,
      {
        serviceId: service?.id ?? null,
        caseTypeId: caseType?.id ?? null,
        channel: 'web',
        language: input.language,
        priority: caseType?.defaultPriority ?? 'normal',
        returning: () => this.d.cases.hasCases(p.agencyId, p.constituentId),
      },
      fallback,
    );
    const groupId = route.groupId;
    if (!groupId) throw new AppError('UNAVAILABLE', 'This agency is not taking chats yet', { retryable: false });

    // Masked before the transaction: the agency's patterns are read outside it (PGlite has one connection).
    const first = input.message && this.d.sensitive ? await this.d.sensitive.mask(p.agencyId, input.message) : undefined;
    const year = (this.d.now?.() ?? new Date()).getUTCFullYear();
    const prefix = caseType?.prefix ?? agency.casePrefix;
    // Taken before the transaction (a resumed chat skips its number; references are never reused).
    const reserved = await this.d.cases.reserveReference(p.agencyId, prefix, year);
    let outcome: { conversationId: string; caseId?: string; created: boolean; messageId: string | null };
    try {
      outcome = await this.d.db.transaction(async (tx) => {
        await this.d.constituents.updateDetails(tx, p.constituentId, {
          displayName: input.name,
          email: input.email,
          phone: input.phone,
          language: input.language,
        });
        const identity = await this.d.constituents.identityFor(tx, {
          agencyId: p.agencyId,
          constituentId: p.constituentId,
          channel: 'web',
          address: p.widgetSessionId,
        });
        const identityId = identity.id;
        // A widget session's first chat has nothing to resume and no recent chats to count.
        if (!identity.isNew) {
          const open = await this.d.conversations.findOpenByIdentity(tx, identityId);
          if (open) return { conversationId: open.id, created: false, messageId: null };
          const limit = this.d.conversationsPerSession;
          if ((await this.d.conversations.countRecentByIdentity(tx, identityId, limit.duration)) >= limit.points) {
            throw new AppError('RATE_LIMITED', 'You have started several chats recently. Please wait before starting another.', {
              retryAfterMs: limit.duration * 1000,
            });
          }
        }

        const reference = reserved ?? (await this.d.cases.nextReference(tx, p.agencyId, prefix, year));
        const about = service?.title.en ?? input.service;
        const title = about ? `Web chat: ${about}` : 'Web chat';
        const kase = await this.d.cases.create(tx, {
          agencyId: p.agencyId,
          reference,
          title,
          constituentId: p.constituentId,
          groupId,
          caseTypeId: caseType?.id ?? null,
          priority: route.priority,
          customFields,
        });
        await this.d.caseStarted(tx, kase);
        const conv = await this.d.conversations.create(tx, {
          agencyId: p.agencyId,
          constituentId: p.constituentId,
          channelIdentityId: identityId,
          channel: 'web',
          groupId,
          caseId: kase.id,
          language: input.language,
          offline: input.offline,
        });
        await this.d.cases.addEvent(tx, {
          caseId: kase.id,
          kind: 'conversation.started',
          actorKind: 'constituent',
          conversationId: conv.id,
          data: { channel: 'web', service: about ?? null, offline: input.offline, routing: route.explanation },
        });
        let messageId: string | null = null;
        if (input.message) {
          const { message } = await this.d.messages.append(
            {
              conversationId: conv.id,
              clientMessageId: input.clientMessageId ?? null,
              authorKind: 'constituent',
              authorConstituentId: p.constituentId,
              visibility: 'public',
              body: first?.text ?? input.message,
              channel: 'web',
              ...(first?.kinds.length ? { meta: { masked: first.kinds } } : {}),
            },
            tx,
          );
          messageId = message.id;
        }
        return { conversationId: conv.id, caseId: kase.id, created: true, messageId };
      });
    } catch (err) {
      // Two "start chat" calls raced: the unique partial index let one win. Answer with the winner's conversation.
      if (pgErrorCode(err) === '23505' && pgConstraint(err) === 'conversations_one_open_uq') {
        const mine = (await this.d.conversations.listForConstituent(p.constituentId)).find((c) => c.status !== 'ended');
        if (mine) return { conversation: toConstituentView(mine), message: null, created: false };
      }
      throw err;
    }

    if (outcome.created) {
      // After the commit, in a statement of its own: the agency's audit chain is locked per row written, and a
      // surge of chats must not queue behind each other's transactions.
      await this.d.audit.record({
        agencyId: p.agencyId,
        actorKind: 'constituent',
        actorId: p.constituentId,
        action: 'conversation.start',
        objectType: 'conversation',
        objectId: outcome.conversationId,
        outcome: 'success',
        detail: { caseId: outcome.caseId },
      });
    }
    const view = (await this.d.conversations.findView(outcome.conversationId))!;
    let message: Message | null = null;
    if (outcome.created) {
      this.d.notifier.conversationCreated(toSummary(view));
      if (outcome.messageId) {
        const [row] = await this.d.messages.listAfter(view.id, 0, 1, false);
        if (row) {
          message = toMessage(row);
          this.d.notifier.messageCreated(message, view);
        }
      }
      void this.announceQueue(view.groupId);
      this.d.routing?.queueChanged(view.groupId);
    }
    return { conversation: toConstituentView(view), message, created: outcome.created };
  }

  /**
   * Attach a conversation to another case of the agency (the constituent wrote about a case that already
   * exists). Both case timelines record the move.
   */
  async moveToCase(p: StaffPrincipal, id: string, reference: string): Promise<ConversationSummary> {
    const conv = await this.get(p, id);
    assertStaffCanAct(p, conv);
    const target = await this.d.cases.findByReference(p.agencyId, reference);
    const visible = target && (p.groupIds.includes(target.groupId ?? '') || target.assigneeId === p.userId);
    if (!target || !visible) throw invalid('reference', `No case ${reference} that you can see`);
    if (target.id === conv.caseId) throw invalid('reference', `This conversation is already on ${reference}`);
    await this.d.db.transaction(async (tx) => {
      await this.d.conversations.moveToCase(tx, id, target.id);
      const common = { actorKind: 'agent' as const, actorUserId: p.userId, conversationId: id };
      await this.d.cases.addEvent(tx, { ...common, caseId: conv.caseId, kind: 'conversation.moved_out', data: { to: target.reference } });
      await this.d.cases.addEvent(tx, { ...common, caseId: target.id, kind: 'conversation.moved_in', data: { from: conv.caseReference } });
      await this.d.audit.record(
        {
          agencyId: p.agencyId,
          actorKind: 'staff',
          actorId: p.userId,
          action: 'conversation.move_case',
          objectType: 'conversation',
          objectId: id,
          outcome: 'success',
          detail: { fromCaseId: conv.caseId, toCaseId: target.id },
        },
        tx,
      );
    });
    const summary = toSummary((await this.d.conversations.findView(id))!);
    this.d.notifier.conversationUpdated(summary);
    return summary;
  }

  /**
   * Tells the constituent something about their case on its open conversation, as a public message from the
   * agency. Returns false when no conversation is open (other channels — email, SMS, the portal — come later).
   */
  async tellConstituent(caseId: string, say: (language: ConstituentLanguage) => string): Promise<boolean> {
    const conv = await this.d.conversations.openForCase(caseId);
    if (!conv) return false;
    const body = say(languageOf(conv.language));
    const texted = this.d.texts?.deliveryFor(conv) ?? null;
    const { message } = await this.d.messages.append({
      conversationId: conv.id,
      clientMessageId: null,
      authorKind: 'system',
      visibility: 'public',
      body,
      channel: conv.channel,
      deliveryStatus: texted,
    });
    this.d.notifier.messageCreated(toMessage(message), conv);
    if (texted) void this.d.texts!.deliver(message.id).catch(() => undefined);
    return true;
  }

  /**
   * The case's portal conversation, opened on first use: where the constituent's portal replies and uploads
   * land, and where staff answer them. It goes to the case's assignee when it has one, else to its group's queue.
   */
  async portalConversation(
    p: ConstituentPrincipal,
    kase: { id: string; groupId: string | null; assigneeId: string | null },
    language: 'en' | 'es',
  ): Promise<ConversationView> {
    const made = await this.d.db.transaction(async (tx) => {
      const identityId = await this.d.constituents.ensureIdentity(tx, {
        agencyId: p.agencyId,
        constituentId: p.constituentId,
        channel: 'portal',
        address: kase.id,
      });
      const open = await this.d.conversations.findOpenByIdentity(tx, identityId);
      if (open) return { id: open.id, created: false };
      const groupId = kase.groupId ?? (await this.d.agencies.defaultGroupId(p.agencyId, tx));
      if (!groupId) throw new AppError('UNAVAILABLE', 'This agency is not taking requests yet', { retryable: false });
      const conv = await this.d.conversations.create(tx, {
        agencyId: p.agencyId,
        constituentId: p.constituentId,
        channelIdentityId: identityId,
        channel: 'portal',
        groupId,
        caseId: kase.id,
        language,
        offline: true,
      });
      if (kase.assigneeId) await this.d.conversations.claim(conv.id, kase.assigneeId, tx);
      await this.d.cases.addEvent(tx, {
        caseId: kase.id,
        kind: 'conversation.started',
        actorKind: 'constituent',
        conversationId: conv.id,
        data: { channel: 'portal' },
      });
      return { id: conv.id, created: true };
    });
    const view = (await this.d.conversations.findView(made.id))!;
    if (made.created) {
      this.d.notifier.conversationCreated(toSummary(view));
      if (view.status === 'queued') this.d.routing?.queueChanged(view.groupId);
    }
    return view;
  }

  /**
   * A supervisor joins a colleague's live conversation: they may then reply too. The constituent is told a
   * supervisor joined, and the timeline records it.
   */
  async join(p: StaffPrincipal, id: string): Promise<ConversationSummary> {
    const conv = await this.get(p, id);
    if (p.role !== 'supervisor') throw new AppError('FORBIDDEN', 'Only supervisors join colleagues’ conversations');
    if (conv.status !== 'active') throw new AppError('CONFLICT', 'Only a conversation in progress can be joined');
    if (conv.assigneeId === p.userId) throw new AppError('CONFLICT', 'This conversation is already yours');
    const { message } = await this.d.db.transaction(async (tx) => {
      await this.d.cases.addEvent(tx, {
        caseId: conv.caseId,
        kind: 'conversation.joined',
        actorKind: 'agent',
        actorUserId: p.userId,
        conversationId: id,
      });
      const appended = await this.d.messages.append(
        { conversationId: id, clientMessageId: null, authorKind: 'system', visibility: 'public', body: constituentText(conv.language).supervisorJoined(p.displayName), channel: conv.channel },
        tx,
      );
      // The audit row comes last in a transaction: its chain lock is then held only until the commit.
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, action: 'conversation.join', objectType: 'conversation', objectId: id, outcome: 'success' },
        tx,
      );
      return appended;
    });
    this.d.notifier.messageCreated(toMessage(message), conv);
    return toSummary((await this.d.conversations.findView(id))!);
  }

  /** Staff take a queued conversation. Exactly one of two racing agents wins; the other gets CONFLICT. */
  async claim(p: StaffPrincipal, id: string): Promise<ConversationSummary> {
    const conv = await this.get(p, id);
    assertStaffCanAct(p, conv);
    const claimed = await this.d.db.transaction(async (tx) => {
      const row = await this.d.conversations.claim(id, p.userId, tx);
      if (!row) return undefined;
      await this.d.cases.assign(tx, row.caseId, p.userId);
      await this.d.cases.addEvent(tx, {
        caseId: row.caseId,
        kind: 'conversation.assigned',
        actorKind: 'agent',
        actorUserId: p.userId,
        conversationId: id,
        data: { assigneeId: p.userId, reason: 'claimed' },
      });
      await this.d.audit.record(
        {
          agencyId: p.agencyId,
          actorKind: 'staff',
          actorId: p.userId,
          action: 'conversation.claim',
          objectType: 'conversation',
          objectId: id,
          outcome: 'success',
        },
        tx,
      );
      return row;
    });
    if (!claimed) {
      if (conv.status === 'ended') throw new AppError('CONFLICT', 'This conversation has ended');
      const now = await this.d.conversations.findView(id);
      const who = now?.assigneeId === p.userId ? 'You have' : now?.assigneeName ? `${now.assigneeName} has` : 'Someone else has';
      throw new AppError('CONFLICT', `${who} already taken this conversation`);
    }
    const summary = toSummary((await this.d.conversations.findView(id))!);
    this.d.notifier.conversationUpdated(summary);
    void this.announceQueue(summary.groupId);
    void this.d.agentReady?.(id, p.displayName).catch(() => undefined);
    if (summary.channel === 'voice') this.d.callAssigned?.(id, p.userId);
    return summary;
  }

  /** Queue positions are a courtesy: a failure to announce must not fail the action that moved the queue. */
  private async announceQueue(groupId: string): Promise<void> {
    await this.d.queue.announce(groupId).catch(() => undefined);
  }

  /** A constituent's place in line for each of their queued conversations (sent when their socket connects). */
  async queuePositionsFor(p: ConstituentPrincipal) {
    const mine = await this.d.conversations.listForConstituent(p.constituentId);
    const queued = mine.filter((c) => c.status === 'queued' && c.agencyId === p.agencyId);
    const positions = await Promise.all(queued.map((c) => this.d.queue.positionOf(c.groupId, c.id)));
    return positions.filter((x) => x !== null);
  }

  async isPublicMessage(messageId: string): Promise<boolean> {
    return (await this.d.messages.visibilityOf(messageId)) === 'public';
  }

  /** Moves this side's delivered / read cursors forward and tells the other side. */
  async receipt(p: Principal, id: string, delivered: number | undefined, read: number | undefined): Promise<void> {
    const conv = await this.get(p, id);
    if (p.kind === 'staff' && p.role === 'admin') return; // an admin looking on is not the agent reading
    const side = p.kind === 'staff' ? 'agent' : 'constituent';
    const moved = await this.d.conversations.advanceReceipts(conv.id, side, delivered, read);
    if (moved) this.d.notifier.receiptChanged(conv, side, moved.deliveredSeq, moved.readSeq);
  }

  /** The constituent rates an ended conversation, once. */
  async rate(p: ConstituentPrincipal, id: string, score: number, comment: string | undefined): Promise<void> {
    const conv = await this.get(p, id);
    if (conv.status !== 'ended') throw new AppError('CONFLICT', 'You can rate the chat once it has ended');
    const ok = await this.d.db.transaction(async (tx) => {
      if (!(await this.d.conversations.rate(id, score, comment ?? null, tx))) return false;
      await this.d.cases.addEvent(tx, {
        caseId: conv.caseId,
        kind: 'conversation.rated',
        actorKind: 'constituent',
        conversationId: id,
        data: { score },
      });
      return true;
    });
    if (!ok) throw new AppError('CONFLICT', 'This chat has already been rated');
  }

  /** Plain-text transcript of the public messages (never internal notes), for the constituent to keep. */
  async transcript(p: Principal, id: string): Promise<{ filename: string; text: string }> {
    const conv = await this.get(p, id);
    await this.d.audit.record({
      agencyId: conv.agencyId,
      actorKind: p.kind,
      actorId: p.kind === 'staff' ? p.userId : p.constituentId,
      action: 'conversation.transcript_export',
      objectType: 'conversation',
      objectId: conv.id,
      outcome: 'success',
    });
    const rows = await this.d.messages.listAfter(id, 0, 10_000, true);
    const lines = [
      `Chat transcript — case ${conv.caseReference}`,
      `Started ${toIsoLocal(conv.createdAt)} (UTC)`,
      '',
      ...rows.map((m) => {
        const who = m.authorKind === 'agent' ? (m.authorName ?? 'Agent') : m.authorKind === 'constituent' ? 'You' : 'CaseBridge';
        return `[${toIsoLocal(m.createdAt)}] ${who}: ${m.body}`;
      }),
      '',
    ];
    return { filename: `transcript-${conv.caseReference}.txt`, text: lines.join('\n') };
  }

  /** Emails the constituent the transcript of their ended chat (public messages only). A few per chat. */
  async emailTranscript(p: ConstituentPrincipal, id: string, email: string): Promise<void> {
    const conv = await this.get(p, id);
    if (conv.status !== 'ended') throw new AppError('CONFLICT', 'The transcript can be emailed once the chat has ended');
    await this.d.transcriptEmails.consume(id, 'This transcript has been emailed several times already. Please download it instead.');
    const { text } = await this.transcript(p, id);
    const agency = await this.d.agencies.findById(conv.agencyId);
    await this.d.mailer.send({
      to: email,
      subject: `Your chat with ${agency?.name ?? 'us'} — case ${conv.caseReference}`,
      text,
    });
    await this.d.cases.addEvent(this.d.db, {
      caseId: conv.caseId,
      kind: 'transcript.emailed',
      actorKind: 'constituent',
      conversationId: id,
    });
  }

  /**
   * Ends every open conversation of a constituent inside the caller's transaction (an approved erasure: there
   * is nothing left to continue). Returns what to announce once that transaction has committed — consoles
   * hear conversation:updated like for any other ending, so no agent keeps a chat "waiting" until a reload.
   * Announcing before the commit would tell consoles about an ending a rollback may undo.
   */
  async endAllForConstituent(
    tx: Tx,
    constituentId: string,
    by: StaffPrincipal,
    reason: string,
  ): Promise<() => Promise<void>> {
    const open = await this.d.conversations.openForConstituentLocked(tx, constituentId);
    const ended: typeof open = [];
    for (const conv of open) {
      const row = await this.d.conversations.end(conv.id, tx);
      if (!row) continue;
      ended.push(conv);
      await this.d.cases.addEvent(tx, { caseId: row.caseId, kind: 'conversation.ended', actorKind: 'agent', actorUserId: by.userId, conversationId: conv.id, data: { reason } });
    }
    return async () => {
      for (const conv of ended) {
        const view = await this.d.conversations.findView(conv.id);
        if (view) this.d.notifier.conversationUpdated(toSummary(view), conv);
        if (conv.status === 'queued') void this.announceQueue(conv.groupId);
        if (conv.assigneeId) this.d.routing?.agentFreed(conv.assigneeId);
        if (conv.channel === 'voice') this.d.callEnded?.(conv.id, by.userId);
      }
    };
  }

  /** The constituent, or staff who may act on it, end a conversation. Ending twice is harmless. */
  async end(p: Principal, id: string): Promise<{ conversationId: string; status: ConversationStatus }> {
    const conv = await this.get(p, id);
    if (p.kind === 'staff') assertStaffCanAct(p, conv);
    const ended = await this.d.db.transaction(async (tx) => {
      const row = await this.d.conversations.end(id, tx);
      if (!row) return undefined;
      await this.d.cases.addEvent(tx, {
        caseId: row.caseId,
        kind: 'conversation.ended',
        actorKind: p.kind === 'staff' ? 'agent' : 'constituent',
        actorUserId: p.kind === 'staff' ? p.userId : null,
        conversationId: id,
      });
      await this.d.audit.record(
        {
          agencyId: p.agencyId,
          actorKind: p.kind,
          actorId: p.kind === 'staff' ? p.userId : p.constituentId,
          action: 'conversation.end',
          objectType: 'conversation',
          objectId: id,
          outcome: 'success',
        },
        tx,
      );
      return row;
    });
    if (ended) {
      this.d.notifier.conversationUpdated(toSummary((await this.d.conversations.findView(id))!));
      if (conv.status === 'queued') void this.announceQueue(conv.groupId);
      if (conv.assigneeId) this.d.routing?.agentFreed(conv.assigneeId);
      if (conv.channel === 'voice') this.d.callEnded?.(id, p.kind === 'staff' ? p.userId : null);
    }
    return { conversationId: id, status: 'ended' };
  }
}

function scopeOf(p: StaffPrincipal): StaffScope {
  return { agencyId: p.agencyId, userId: p.userId, groupIds: p.role === 'admin' ? null : p.groupIds };
}

function invalid(field: string, message: string): AppError {
  return new AppError('INVALID_PAYLOAD', message, { issues: [{ path: [field], message }] });
}

/** Cursors are opaque to clients: the sort key of the last row they saw. */
function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}
function decodeCursor(cursor: string): { at: string; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    const timestamp = /^\d{4}-\d{2}-\d{2}[ T][\d:.]+(Z|[+-]\d{2}(:?\d{2})?)?$/;
    if (typeof at === 'string' && timestamp.test(at) && typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id)) {
      return { at, id };
    }
  } catch {
    // fall through
  }
  throw invalid('cursor', 'The cursor is not valid; start from the first page');
}

function toIsoLocal(ts: string): string {
  return new Date(ts).toISOString().replace('T', ' ').slice(0, 16);
}
