import type { Masker } from '../messages/message.service.js';
import type { CallSummary, Channel, Priority, RoutingDecision } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { isBusinessTime } from '../../lib/business-time.js';
import type { Logger } from '../../lib/logger.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { CaseRepository, CaseRow } from '../cases/case.repository.js';
import type { CaseTypeRepository } from '../case-types/case-type.repository.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import { assertVisible, canSee } from '../conversations/conversation.access.js';
import { toSummary } from '../conversations/conversation.mapper.js';
import type { ConversationRepository } from '../conversations/conversation.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { TaskRepository } from '../tasks/task.repository.js';
import type { TwilioClients } from '../twilio/twilio-client.js';
import type { TwilioAgency } from '../twilio/twilio-settings.service.js';
import type { CallRepository, CallRow } from './call.repository.js';
import { Ivr, PROMPTS, type Lang, type MenuService } from './ivr.js';
import { fetchRecording, RecordingRefused } from './recording.js';
import { agentIdentity, type VoiceSettingsService } from './voice-settings.service.js';

export interface CallServiceDeps {
  db: Db;
  /** Masks sensitive numbers in voicemail transcriptions before they are stored (issue #11). */
  sensitive?: Masker;
  calls: CallRepository;
  conversations: ConversationRepository;
  cases: CaseRepository;
  constituents: ConstituentRepository;
  agencies: AgencyRepository;
  caseTypes: CaseTypeRepository;
  tasks: TaskRepository;
  audit: AuditRepository;
  voiceSettings: VoiceSettingsService;
  /** The agency's Twilio account (credentials opened), or undefined when it is not set up. */
  twilioAgency: (agencyId: string) => Promise<TwilioAgency | undefined>;
  clients: TwilioClients;
  /** Twilio's REST host in tests (a local fake); unset in production. */
  apiBaseUrl?: string;
  decideRoute: (
    agencyId: string,
    facts: { serviceId: string | null; caseTypeId: string | null; channel: Channel; language: Lang; priority: Priority; returning: boolean | (() => Promise<boolean>) },
    fallbackGroupId: string | null,
  ) => Promise<RoutingDecision>;
  caseStarted: (tx: Tx, kase: CaseRow) => Promise<void>;
  notifier: Notifier;
  routing: { queueChanged(groupId: string): void; agentFreed(userId: string): void };
  announceQueue: (groupId: string) => Promise<void>;
  /** An agent who let a call ring out is set away, like routed work that lapses. */
  setAway: (userId: string) => Promise<void>;
  /** An agent answered: the case's first-response clock stops. */
  agentAnswered?: (caseId: string) => Promise<void>;
  logger: Logger;
  now?: () => Date;
}

const TERMINAL = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);
const LIVE = new Set<CallRow['state']>(['ivr', 'queued', 'connecting', 'in_progress']);
const secondsSince = (from: string | null, now: Date) => (from ? Math.max(0, Math.round((now.getTime() - new Date(from).getTime()) / 1000)) : null);
export const queueName = (groupId: string) => `cb-${groupId}`;

/**
 * Phone calls: the IVR's decisions, the queue, putting a caller through to an agent, and what Twilio reports
 * afterwards (leg progress, the end of the call, recordings, transcriptions). Every report is applied once
 * (guarded state changes and per-delivery keys), so Twilio's retries never add a second timeline entry.
 */
export class CallService {
  constructor(private readonly d: CallServiceDeps) {}

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  /** A call arrived at the menu (or a retry of that webhook): the same row every time. */
  incoming(agencyId: string, c: { callSid: string; from: string; to: string }): Promise<CallRow> {
    return this.d.calls.upsert({ agencyId, callSid: c.callSid, fromNumber: c.from, toNumber: c.to });
  }

  bySid(callSid: string): Promise<CallRow | undefined> {
    return this.d.calls.bySid(callSid);
  }

  async setLanguage(call: CallRow, lang: Lang): Promise<void> {
    if (call.state === 'ivr' && call.language !== lang) await this.d.calls.setLanguage(call.id, lang);
  }

  /** The services offered by phone in this language, in catalog order; at most nine (one key each). */
  async menu(agencyId: string, lang: Lang): Promise<MenuService[]> {
    const rows = await this.d.caseTypes.listServices(agencyId);
    return rows
      .filter((r) => r.published && r.channels.includes('voice') && r.languages.includes(lang))
      .slice(0, 9)
      .map((r) => ({ id: r.id, title: (lang === 'es' && r.title.es) || r.title.en, keywords: r.keywords }));
  }

  /** Whether the agency is open now (its business hours and holidays; no hours set: always open). */
  async isOpen(agencyId: string): Promise<boolean> {
    const agency = await this.d.agencies.findById(agencyId);
    return Boolean(agency) && isBusinessTime(this.now(), { hours: agency!.businessHours ?? null, holidays: agency!.holidays });
  }

  /**
   * The caller chose (or skipped) a service: the call becomes a voice conversation with a case, routed like
   * chat, waiting in its group's queue. A retry finds the conversation it made.
   */
  async enterQueue(call: CallRow, serviceId: string | null): Promise<{ groupId: string; conversationId: string }> {
    if (call.state !== 'ivr' && call.conversationId) return this.queued(call.conversationId);
    const plan = await this.plan(call, serviceId);
    const now = this.now();
    const made = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['ivr'], 'queued', { queuedAt: now.toISOString(), serviceId: plan.service?.id ?? null });
      if (!moved) return undefined;
      return this.openCase(tx, call, plan, now, {});
    });
    if (!made) {
      const again = await this.d.calls.byId(call.id);
      if (!again?.conversationId) throw new AppError('CONFLICT', 'This call changed meanwhile');
      return this.queued(again.conversationId);
    }
    const view = await this.d.conversations.findView(made.conversationId);
    if (view) this.d.notifier.conversationCreated(toSummary(view));
    await this.d.announceQueue(made.groupId).catch(() => undefined);
    this.d.routing.queueChanged(made.groupId);
    return made;
  }

  /**
   * Outside business hours: nobody is queued. The caller leaves a voicemail or asks to be called back; either
   * way the call gets a case (in the group its routing picks) whose conversation is already over, and a
   * callback gets its task at once (a voicemail's comes with the recording). Returns false if the call had
   * already moved on (a retry): the caller hears the same thing again.
   */
  async closedHours(call: CallRow, choice: 'voicemail' | 'callback'): Promise<boolean> {
    if (call.state !== 'ivr') return call.state === choice;
    const plan = await this.plan(call, null);
    const now = this.now();
    const made = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['ivr'], choice, choice === 'callback' ? { endedAt: now.toISOString() } : {});
      if (!moved) return undefined;
      const opened = await this.openCase(tx, call, plan, now, { closed: true });
      await this.d.conversations.end(opened.conversationId, tx);
      if (choice === 'callback') {
        const task = await this.d.tasks.create(tx, {
          caseId: opened.caseId,
          title: `Call back ${call.fromNumber}`,
          instructions: `The caller rang while the office was closed and asked to be called back (${call.language === 'es' ? 'Spanish' : 'English'}).`,
          groupId: opened.groupId,
        });
        await this.d.calls.update(tx, call.id, { taskId: task.id });
        await this.d.cases.addEvent(tx, {
          caseId: opened.caseId,
          kind: 'call.callback_requested',
          actorKind: 'constituent',
          conversationId: opened.conversationId,
          data: { callId: call.id, number: call.fromNumber, taskId: task.id, title: task.title, waitedSeconds: null, closed: true },
        });
      } else {
        await this.d.cases.addEvent(tx, {
          caseId: opened.caseId,
          kind: 'call.voicemail_started',
          actorKind: 'constituent',
          conversationId: opened.conversationId,
          data: { callId: call.id, from: call.fromNumber, waitedSeconds: null, closed: true },
        });
      }
      return opened;
    });
    if (!made) return (await this.d.calls.byId(call.id))?.state === choice;
    const view = await this.d.conversations.findView(made.conversationId);
    if (view) this.d.notifier.conversationCreated(toSummary(view));
    return true;
  }

  /** Where a call's case goes and what it is about; decided before any transaction (PGlite has one connection). */
  private async plan(call: CallRow, serviceId: string | null) {
    const agency = await this.d.agencies.findById(call.agencyId);
    if (!agency) throw new AppError('NOT_FOUND', 'Agency not found');
    const service = serviceId ? await this.d.caseTypes.findService(call.agencyId, serviceId) : undefined;
    const caseType = service ? await this.d.caseTypes.find(call.agencyId, service.caseTypeId) : undefined;
    const known = await this.d.constituents.findByPhone(call.agencyId, call.fromNumber);
    const route = await this.d.decideRoute(
      call.agencyId,
      {
        serviceId: service?.id ?? null,
        caseTypeId: caseType?.id ?? null,
        channel: 'voice',
        language: call.language,
        priority: caseType?.defaultPriority ?? 'normal',
        returning: known ? () => this.d.cases.hasCases(call.agencyId, known) : false,
      },
      caseType?.defaultGroupId ?? (await this.d.agencies.defaultGroupId(call.agencyId)) ?? null,
    );
    if (!route.groupId) throw new AppError('UNAVAILABLE', 'This agency is not taking calls yet', { retryable: false });
    const prefix = caseType?.prefix ?? agency.casePrefix;
    const reference = await this.d.cases.reserveReference(call.agencyId, prefix, this.now().getUTCFullYear());
    return { agency, service, caseType, route, groupId: route.groupId, prefix, reference };
  }

  /** The caller as a constituent, the case and the voice conversation (queued), and the "call received" entry. */
  private async openCase(
    tx: Tx,
    call: CallRow,
    plan: Awaited<ReturnType<CallService['plan']>>,
    now: Date,
    extra: { closed?: boolean },
  ): Promise<{ conversationId: string; caseId: string; groupId: string }> {
    const { agency, service, caseType, route, groupId } = plan;
    const constituentId = await this.d.constituents.findOrCreate(tx, call.agencyId, {
      name: call.fromNumber,
      phone: /^\+\d+$/.test(call.fromNumber) ? call.fromNumber : undefined,
      language: call.language,
    });
    const identityId = await this.d.constituents.ensureIdentity(tx, {
      agencyId: call.agencyId,
      constituentId,
      channel: 'voice',
      address: call.fromNumber,
    });
    // One open conversation per number: a call whose end Twilio never reported must not block this one.
    const stale = await this.d.conversations.findOpenByIdentity(tx, identityId);
    if (stale) {
      await this.d.conversations.end(stale.id, tx);
      await this.d.cases.addEvent(tx, {
        caseId: stale.caseId,
        kind: 'conversation.ended',
        actorKind: 'system',
        conversationId: stale.id,
        data: { reason: 'superseded_by_new_call' },
      });
    }
    const reference = plan.reference ?? (await this.d.cases.nextReference(tx, call.agencyId, plan.prefix, now.getUTCFullYear()));
    const kase = await this.d.cases.create(tx, {
      agencyId: call.agencyId,
      reference,
      title: service ? `Phone call: ${service.title.en}` : 'Phone call',
      constituentId,
      groupId,
      caseTypeId: caseType?.id ?? null,
      priority: route.priority,
    });
    await this.d.caseStarted(tx, kase);
    const conv = await this.d.conversations.create(tx, {
      agencyId: call.agencyId,
      constituentId,
      channelIdentityId: identityId,
      channel: 'voice',
      groupId,
      caseId: kase.id,
      language: call.language,
    });
    await this.d.calls.update(tx, call.id, { conversationId: conv.id, caseId: kase.id, constituentId });
    await this.d.cases.addEvent(tx, {
      caseId: kase.id,
      kind: 'call.received',
      actorKind: 'constituent',
      conversationId: conv.id,
      data: {
        callId: call.id,
        from: call.fromNumber,
        language: call.language,
        service: service?.title.en ?? null,
        routing: route.explanation,
        ...(extra.closed ? { closed: true } : {}),
      },
    });
    return { conversationId: conv.id, caseId: kase.id, groupId };
  }

  private async queued(conversationId: string): Promise<{ groupId: string; conversationId: string }> {
    const view = await this.d.conversations.findView(conversationId);
    if (!view) throw new AppError('NOT_FOUND', 'Conversation not found');
    return { groupId: view.groupId, conversationId };
  }

  /** The hook assignment calls: never throws (the caller keeps waiting; the routing sweep retries). */
  bridgeSoon(conversationId: string, userId: string): Promise<void> {
    return this.bridge(conversationId, userId).catch((err: unknown) => this.d.logger.warn({ err, conversationId }, 'putting a call through failed'));
  }

  /** The caller's place among the calls waiting in their group. */
  position(call: CallRow): Promise<number | null> {
    return call.conversationId ? this.d.calls.positionInQueue(call.conversationId) : Promise.resolve(null);
  }

  /** What the caller pressed while waiting; Twilio then takes them out of the queue (QueueResult=leave). */
  async chooseWhileWaiting(call: CallRow, choice: 'callback' | 'voicemail'): Promise<boolean> {
    if (call.state !== 'queued') return false;
    await this.d.calls.setChoice(call.id, choice);
    return true;
  }

  /** The caller left the queue: by choice (callback, voicemail), by hanging up, or put through to an agent. */
  async leftQueue(call: CallRow, result: string, ivr: Ivr): Promise<string> {
    const lang = call.language;
    if (result === 'leave') {
      if (call.choice === 'callback' && (await this.requestCallback(call))) return ivr.callbackConfirmed(lang);
      if (call.choice === 'voicemail' && (await this.startVoicemail(call))) return ivr.voicemail(lang);
      const now = await this.d.calls.byId(call.id);
      if (now?.state === 'callback') return ivr.callbackConfirmed(lang);
      if (now?.state === 'voicemail') return ivr.voicemail(lang);
      return ivr.say1(lang, PROMPTS[lang].goodbye);
    }
    if (result === 'hangup' || result === 'queue-full' || result === 'error' || result === 'system-error') {
      await this.abandon(call, result);
      return result === 'hangup' ? ivr.empty() : ivr.say1(lang, PROMPTS[lang].unavailable);
    }
    // bridged / redirected: the TwiML that put the caller through has taken over.
    return ivr.empty();
  }

  private async endConversation(tx: Tx, call: CallRow): Promise<void> {
    if (call.conversationId) await this.d.conversations.end(call.conversationId, tx);
  }

  private async afterEnd(call: CallRow, wasQueued: boolean): Promise<void> {
    if (!call.conversationId) return;
    const view = await this.d.conversations.findView(call.conversationId);
    if (view) this.d.notifier.conversationUpdated(toSummary(view));
    if (view && wasQueued) await this.d.announceQueue(view.groupId).catch(() => undefined);
    if (call.agentId) this.d.routing.agentFreed(call.agentId);
  }

  /** "Call me back": the call ends and the group gets a task to ring the number. */
  private async requestCallback(call: CallRow): Promise<boolean> {
    const now = this.now();
    const done = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['queued'], 'callback', { endedAt: now.toISOString() });
      if (!moved || !moved.caseId) return undefined;
      await this.endConversation(tx, moved);
      const conv = moved.conversationId ? await this.d.conversations.findView(moved.conversationId, tx) : undefined;
      const task = await this.d.tasks.create(tx, {
        caseId: moved.caseId,
        title: `Call back ${moved.fromNumber}`,
        instructions: `The caller asked to be called back instead of waiting (${moved.language === 'es' ? 'Spanish' : 'English'}).`,
        groupId: conv?.groupId ?? null,
      });
      await this.d.calls.update(tx, call.id, { taskId: task.id });
      await this.d.cases.addEvent(tx, {
        caseId: moved.caseId,
        kind: 'call.callback_requested',
        actorKind: 'constituent',
        conversationId: moved.conversationId,
        data: { callId: call.id, number: moved.fromNumber, taskId: task.id, title: task.title, waitedSeconds: secondsSince(moved.queuedAt, now) },
      });
      return moved;
    });
    if (done) await this.afterEnd(done, true);
    return Boolean(done);
  }

  /** The caller chose voicemail: they leave the queue and record a message (its recording arrives later). */
  private async startVoicemail(call: CallRow): Promise<boolean> {
    const now = this.now();
    const done = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['queued'], 'voicemail');
      if (!moved || !moved.caseId) return undefined;
      await this.endConversation(tx, moved);
      await this.d.cases.addEvent(tx, {
        caseId: moved.caseId,
        kind: 'call.voicemail_started',
        actorKind: 'constituent',
        conversationId: moved.conversationId,
        data: { callId: call.id, from: moved.fromNumber, waitedSeconds: secondsSince(moved.queuedAt, now) },
      });
      return moved;
    });
    if (done) await this.afterEnd(done, true);
    return Boolean(done);
  }

  /** The caller hung up (or the queue failed) before anyone answered: recorded as abandoned. */
  private async abandon(call: CallRow, reason: string, durationSeconds?: number): Promise<boolean> {
    const now = this.now();
    const done = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['queued', 'connecting'], 'abandoned', {
        endedAt: now.toISOString(),
        ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      });
      if (!moved) return undefined;
      await this.endConversation(tx, moved);
      if (moved.caseId) {
        await this.d.cases.addEvent(tx, {
          caseId: moved.caseId,
          kind: 'call.abandoned',
          actorKind: 'constituent',
          conversationId: moved.conversationId,
          data: { callId: call.id, reason, waitedSeconds: secondsSince(moved.queuedAt, now), whileRinging: call.state === 'connecting' },
        });
      }
      return { ...moved, agentId: call.agentId };
    });
    if (done) await this.afterEnd(done, true);
    return Boolean(done);
  }

  /** The caller's call ended (Twilio's status callback). */
  async callEnded(call: CallRow, status: string, callDuration: number | undefined): Promise<void> {
    if (!TERMINAL.has(status)) return;
    if (call.state === 'ivr') {
      await this.d.calls.transition(this.d.db, call.id, ['ivr'], 'completed', { endedAt: this.now().toISOString(), durationSeconds: callDuration ?? null });
      return;
    }
    if (call.state === 'queued' || call.state === 'connecting') {
      await this.abandon(call, 'hangup');
      return;
    }
    if (call.state === 'in_progress') {
      await this.completed(call);
      return;
    }
    if ((call.state === 'voicemail' || call.state === 'callback') && !call.endedAt) {
      await this.d.calls.update(this.d.db, call.id, { endedAt: this.now().toISOString() });
    }
  }

  /**
   * Staff ended a voice conversation in the console: the live call is hung up through Twilio's REST API and
   * recorded as ended by the agent (Twilio's later reports about it then change nothing). Never throws.
   */
  async hangUp(conversationId: string, byUserId: string | null): Promise<void> {
    try {
      const call = await this.d.calls.byConversation(conversationId);
      if (!call || !LIVE.has(call.state)) return;
      const agency = await this.d.twilioAgency(call.agencyId);
      if (!agency) return;
      try {
        await this.d.clients.forAgency(agency).calls(call.callSid).update({ status: 'completed' });
      } catch (err) {
        // 20404 / 21220: the call is already over; its status callback says how.
        this.d.logger.warn({ callId: call.id, code: (err as { code?: number }).code ?? null }, 'Twilio did not hang up the call');
        return;
      }
      const now = this.now();
      const done = await this.d.db.transaction(async (tx) => {
        const moved = await this.d.calls.transition(tx, call.id, ['ivr', 'queued', 'connecting', 'in_progress'], 'completed', {
          endedAt: now.toISOString(),
          durationSeconds: secondsSince(call.answeredAt, now),
        });
        if (!moved?.caseId) return moved;
        await this.d.cases.addEvent(tx, {
          caseId: moved.caseId,
          kind: 'call.ended',
          actorKind: byUserId ? 'agent' : 'system',
          actorUserId: byUserId,
          conversationId: moved.conversationId,
          data: { callId: call.id, durationSeconds: moved.durationSeconds, endedBy: 'agent' },
        });
        return moved;
      });
      if (done?.agentId) this.d.routing.agentFreed(done.agentId);
    } catch (err) {
      this.d.logger.warn({ err, conversationId }, 'hanging up a call failed');
    }
  }

  /** The conversation with the agent is over. */
  private async completed(call: CallRow, talkSeconds?: number): Promise<boolean> {
    const now = this.now();
    const durationSeconds = talkSeconds ?? secondsSince(call.answeredAt, now);
    const done = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['in_progress'], 'completed', { endedAt: now.toISOString(), durationSeconds });
      if (!moved) return undefined;
      await this.endConversation(tx, moved);
      if (moved.caseId) {
        await this.d.cases.addEvent(tx, {
          caseId: moved.caseId,
          kind: 'call.ended',
          actorKind: 'system',
          actorUserId: moved.agentId,
          conversationId: moved.conversationId,
          data: { callId: call.id, durationSeconds },
        });
      }
      return moved;
    });
    if (done) await this.afterEnd(done, false);
    return Boolean(done);
  }

  /**
   * Puts a waiting caller through to the agent a voice conversation was just given to (by a claim or by
   * routing): the live call is redirected with TwiML that dials their browser or their phone. If Twilio refuses,
   * the conversation goes back in line (the routing sweep tries again).
   */
  async bridge(conversationId: string, userId: string): Promise<void> {
    const call = await this.d.calls.byConversation(conversationId);
    if (!call || call.state !== 'queued') return;
    const agency = await this.d.twilioAgency(call.agencyId);
    if (!agency) {
      this.d.logger.warn({ callId: call.id }, 'a call was assigned but the agency has no Twilio account now');
      return;
    }
    const phone = await this.d.voiceSettings.agentPhone(userId);
    const moved = await this.d.calls.transition(this.d.db, call.id, ['queued'], 'connecting', { agentId: userId });
    if (!moved) return;
    const twiml = new Ivr(agency.publicBaseUrl).bridge(
      call.language,
      phone ? { number: phone, callerId: call.toNumber } : { client: agentIdentity(userId) },
      conversationId,
    );
    try {
      await this.d.clients.forAgency(agency).calls(call.callSid).update({ twiml });
    } catch (err) {
      const code = (err as { code?: number }).code ?? null;
      this.d.logger.warn({ callId: call.id, code }, 'Twilio refused to put the call through; back in line');
      await this.backInLine(moved, userId, 'call.bridge_failed', { code });
    }
  }

  /**
   * The agent did not pick up (or putting through failed): the caller waits again, keeping their place. Returns
   * the conversation as it is now (someone else may already have it), or undefined if nothing changed.
   */
  private async backInLine(
    call: CallRow,
    userId: string,
    kind: string,
    data: Record<string, unknown>,
  ): Promise<{ id: string; groupId: string; status: string; assigneeId: string | null } | undefined> {
    const row = await this.d.db.transaction(async (tx) => {
      const moved = await this.d.calls.transition(tx, call.id, ['connecting'], 'queued', { agentId: null });
      if (!moved || !moved.conversationId || !moved.caseId) return undefined;
      const returned = await this.d.conversations.returnToQueue(tx, moved.conversationId, userId);
      if (returned) await this.d.cases.unassign(tx, moved.caseId, userId);
      await this.d.cases.addEvent(tx, {
        caseId: moved.caseId,
        kind,
        actorKind: 'system',
        actorUserId: userId,
        conversationId: moved.conversationId,
        data: { callId: call.id, ...data },
      });
      // Already back in line (the agent went offline meanwhile) or even with someone else: that stands.
      return returned ?? (await this.d.conversations.findView(moved.conversationId, tx));
    });
    if (!row || row.status === 'ended') return undefined;
    const view = await this.d.conversations.findView(row.id);
    if (view) this.d.notifier.conversationUpdated(toSummary(view), { groupId: row.groupId, assigneeId: userId });
    await this.d.announceQueue(row.groupId).catch(() => undefined);
    return row;
  }

  /** How the Dial to the agent ended (its action URL). Returns what the caller hears next. */
  async dialEnded(call: CallRow, p: { dialStatus: string; dialDuration?: number; callStatus?: string }, ivr: Ivr): Promise<string> {
    const lang = call.language;
    if (p.dialStatus === 'completed' || p.dialStatus === 'answered') {
      await this.completed(call, p.dialDuration);
      return ivr.say1(lang, PROMPTS[lang].goodbye);
    }
    if (p.callStatus && TERMINAL.has(p.callStatus)) {
      await this.abandon(call, 'hangup');
      return ivr.empty();
    }
    const agentId = call.agentId;
    if (call.state !== 'connecting' || !agentId) {
      // A retry of this callback after the caller went back in line: the same answer, nothing new.
      if (call.state === 'queued' && call.conversationId) return ivr.enqueue(lang, queueName((await this.queued(call.conversationId)).groupId), PROMPTS[lang].agentMissed);
      return ivr.say1(lang, PROMPTS[lang].goodbye);
    }
    const back = await this.backInLine(call, agentId, 'call.missed', { status: p.dialStatus });
    if (!back) return ivr.say1(lang, PROMPTS[lang].goodbye);
    await this.d.setAway(agentId).catch(() => undefined);
    if (back.status === 'active' && back.assigneeId) void this.bridgeSoon(back.id, back.assigneeId);
    else this.d.routing.queueChanged(back.groupId);
    return ivr.enqueue(lang, queueName(back.groupId), PROMPTS[lang].agentMissed);
  }

  /** The agent's leg rang or was answered (its status callback); each once per leg. */
  async legProgress(call: CallRow, legSid: string, status: string): Promise<void> {
    if (!call.caseId) return;
    const now = this.now();
    if (status === 'ringing') {
      await this.d.db.transaction(async (tx) => {
        if (!(await this.d.calls.markSeen(tx, call.id, `leg:${legSid}:ringing`))) return;
        await this.d.cases.addEvent(tx, {
          caseId: call.caseId!,
          kind: 'call.ringing',
          actorKind: 'system',
          actorUserId: call.agentId,
          conversationId: call.conversationId,
          data: { callId: call.id },
        });
      });
      return;
    }
    if (status === 'in-progress' || status === 'answered') {
      const answered = await this.d.db.transaction(async (tx) => {
        if (!(await this.d.calls.markSeen(tx, call.id, `leg:${legSid}:answered`))) return false;
        const moved = await this.d.calls.transition(tx, call.id, ['connecting'], 'in_progress', { answeredAt: now.toISOString() });
        if (!moved) return false;
        await this.d.cases.addEvent(tx, {
          caseId: call.caseId!,
          kind: 'call.answered',
          actorKind: 'agent',
          actorUserId: call.agentId,
          conversationId: call.conversationId,
          data: { callId: call.id, waitedSeconds: secondsSince(call.queuedAt, now) },
        });
        return true;
      });
      if (answered) await this.d.agentAnswered?.(call.caseId).catch(() => undefined);
    }
  }

  /** A recording is ready (voicemail or the call itself): once per RecordingSid. */
  async recordingReady(
    call: CallRow,
    agency: TwilioAgency,
    r: { recordingSid: string; url: string; durationSeconds: number | null; status: string; kind: 'voicemail' | 'call' },
  ): Promise<void> {
    if (r.status !== 'completed' || !call.caseId) return;
    const url = normalizeRecordingUrl(r.url, agency.accountSid);
    await this.d.db.transaction(async (tx) => {
      if (!(await this.d.calls.markSeen(tx, call.id, `recording:${r.recordingSid}`))) return;
      const fresh = (await this.d.calls.byId(call.id, tx))!;
      if (!fresh.recordingSid) {
        await this.d.calls.update(tx, call.id, {
          recordingSid: r.recordingSid,
          recordingUrl: url,
          recordingKind: r.kind,
          recordingDurationSeconds: r.durationSeconds,
        });
      }
      let taskId: string | null = null;
      if (r.kind === 'voicemail') {
        const conv = fresh.conversationId ? await this.d.conversations.findView(fresh.conversationId, tx) : undefined;
        const task = await this.d.tasks.create(tx, {
          caseId: call.caseId!,
          title: `Return voicemail from ${call.fromNumber}`,
          instructions: 'Listen to the voicemail on the case and call back or reply.',
          groupId: conv?.groupId ?? null,
        });
        taskId = task.id;
        if (!fresh.taskId) await this.d.calls.update(tx, call.id, { taskId });
      }
      await this.d.cases.addEvent(tx, {
        caseId: call.caseId!,
        kind: r.kind === 'voicemail' ? 'call.voicemail' : 'call.recording',
        actorKind: r.kind === 'voicemail' ? 'constituent' : 'system',
        conversationId: call.conversationId,
        data: {
          callId: call.id,
          recordingSid: r.recordingSid,
          durationSeconds: r.durationSeconds,
          playable: Boolean(url),
          taskId,
        },
      });
    });
  }

  /** A voicemail's transcription arrived (or failed): once per recording. */
  async transcribed(call: CallRow, t: { recordingSid: string; status: string; text: string | null }): Promise<void> {
    if (!call.caseId) return;
    // What the caller said is masked like anything a constituent writes (before the transaction: see above).
    const masked = t.text && this.d.sensitive ? await this.d.sensitive.mask(call.agencyId, t.text) : undefined;
    const text = masked?.text ?? t.text;
    await this.d.db.transaction(async (tx) => {
      if (!(await this.d.calls.markSeen(tx, call.id, `transcription:${t.recordingSid}`))) return;
      await this.d.calls.update(tx, call.id, { transcriptionStatus: t.status, transcriptionText: text });
      await this.d.cases.addEvent(tx, {
        caseId: call.caseId!,
        kind: 'call.transcription',
        actorKind: 'system',
        conversationId: call.conversationId,
        data: { callId: call.id, recordingSid: t.recordingSid, status: t.status, text, ...(masked?.kinds.length ? { masked: masked.kinds } : {}) },
      });
    });
  }

  // ---- staff --------------------------------------------------------------------------------------

  /** The calls on a case that this staff member may see (through their conversations). */
  async listForCase(p: StaffPrincipal, caseId: string): Promise<CallSummary[]> {
    const rows = await this.d.calls.listForCase(caseId);
    const out: CallSummary[] = [];
    for (const { call, agentName, serviceTitle } of rows) {
      if (call.agencyId !== p.agencyId || !call.conversationId) continue;
      const view = await this.d.conversations.findView(call.conversationId);
      if (!view || !canSee(p, view)) continue;
      out.push({
        id: call.id,
        conversationId: call.conversationId,
        caseId: call.caseId,
        from: call.fromNumber,
        state: call.state,
        language: call.language,
        service: serviceTitle ? serviceTitle.en : null,
        agentName,
        queuedAt: call.queuedAt,
        answeredAt: call.answeredAt,
        endedAt: call.endedAt,
        durationSeconds: call.durationSeconds,
        recordingUrl: call.recordingUrl ? `/api/calls/${call.id}/recording` : null,
        recordingKind: call.recordingKind,
        recordingDurationSeconds: call.recordingDurationSeconds,
        transcriptionStatus: call.transcriptionStatus,
        transcription: call.transcriptionText,
        createdAt: call.createdAt,
      });
    }
    return out;
  }

  /** The recording of a call, fetched from Twilio with the agency's credentials, for staff who may see it. */
  async recording(p: StaffPrincipal, callId: string, sourceIp: string | undefined): Promise<Response> {
    const call = await this.d.calls.byId(callId);
    if (!call || call.agencyId !== p.agencyId || !call.conversationId) throw new AppError('NOT_FOUND', 'Call not found');
    assertVisible(p, await this.d.conversations.findView(call.conversationId));
    if (!call.recordingUrl) throw new AppError('NOT_FOUND', 'This call has no recording');
    const agency = await this.d.twilioAgency(call.agencyId);
    if (!agency) throw new AppError('UNAVAILABLE', 'Twilio is not set up for this agency any more', { retryable: false });
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'call.recording_play',
      objectType: 'call',
      objectId: call.id,
      outcome: 'success',
      sourceIp,
    });
    try {
      return await fetchRecording(this.d.apiBaseUrl, agency, call.recordingUrl);
    } catch (err) {
      if (err instanceof RecordingRefused) throw new AppError('UNAVAILABLE', `The recording could not be fetched: ${err.message}`);
      throw err;
    }
  }
}

/** Only recordings of this account on Twilio's API host are kept (a webhook names the URL). */
export function normalizeRecordingUrl(raw: string, accountSid: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const path = url.pathname.replace(/\.(mp3|wav|json)$/, '');
  const ok =
    url.protocol === 'https:' &&
    url.hostname === 'api.twilio.com' &&
    !url.port &&
    !url.username &&
    new RegExp(`^/2010-04-01/Accounts/${accountSid}/Recordings/RE[0-9a-fA-F]{32}$`).test(path);
  return ok ? `https://api.twilio.com${path}` : null;
}
