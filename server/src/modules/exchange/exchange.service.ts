import { randomUUID } from 'node:crypto';
import {
  DataManifest,
  type HandoffQuery,
  type OfferInput,
  type PartnerInput,
  type PartnerKeyInput,
  type PartnerPatch,
  type Channel,
  type ConversationSummary,
  type ExchangeEvent,
  type Handoff,
  type Message,
  type Partner,
  type PartnerOption,
  type Priority,
  type RoutingDecision,
  type SharedCase,
  type Stage,
} from '@casebridge/shared';
import type { z } from 'zod';
import { pgErrorCode, type Db, type Tx } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../lib/logger.js';
import type { SecretBox } from '../../lib/secret-box.js';
import { toIso } from '../../lib/time.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { AuditEntry, AuditRepository } from '../audit/audit.repository.js';
import type { CaseRepository, CaseRow } from '../cases/case.repository.js';
import type { CaseTypeService } from '../case-types/case-type.service.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import { assertStaffCanAct } from '../conversations/conversation.access.js';
import { toMessage, toSummary } from '../conversations/conversation.mapper.js';
import type { ConversationRepository, ConversationView } from '../conversations/conversation.repository.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { MessageRepository } from '../messages/message.repository.js';
import type { TextSender } from '../messages/message.service.js';
import type { StaffPrincipal } from '../principal.js';
import type { QueueService } from '../queue/queue.service.js';
import { sendEvent } from './exchange.client.js';
import type { ExchangeRepository, HandoffRow, KeyRow, PartnerRow } from './exchange.repository.js';
import { newKeyPair, parsePublicKey } from './exchange.signing.js';
import { constituentText } from '../constituent-text.js';

export interface ExchangeDeps {
  db: Db;
  repo: ExchangeRepository;
  box: SecretBox;
  audit: AuditRepository;
  cases: CaseRepository;
  caseTypes: Pick<CaseTypeService, 'findPublished' | 'get'>;
  conversations: ConversationRepository;
  conversationService: Pick<ConversationService, 'get'>;
  messages: MessageRepository;
  constituents: ConstituentRepository;
  agencies: AgencyRepository;
  decideRoute: (
    agencyId: string,
    facts: { serviceId: string | null; caseTypeId: string | null; channel: Channel; language: 'en' | 'es'; priority: Priority; returning: boolean },
    fallbackGroupId: string | null,
  ) => Promise<RoutingDecision>;
  caseStarted: (tx: Tx, kase: CaseRow) => Promise<void>;
  announceCase: (kase: CaseRow) => void;
  notifier: Notifier;
  queue: Pick<QueueService, 'announce'>;
  routing: { queueChanged(groupId: string): void; agentFreed(userId: string): void };
  texts?: Pick<TextSender, 'deliveryFor' | 'deliver'>;
  logger: Logger;
  now: () => Date;
  /** Runs the worker on one node at a time (a PostgreSQL advisory lock; PGlite has one node anyway). */
  exclusive: <T>(fn: () => Promise<T>) => Promise<T | undefined>;
  intervalMs: number;
}

/** Backoff of the outbox: 1 s, 2 s, 4 s … capped at 5 minutes; after this many attempts (about a day) it gives up. */
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;
const MAX_ATTEMPTS = 300;

type Row = HandoffRow & { partnerName: string; groupName: string | null };

/**
 * The Service Exchange: partners, handoffs between two CaseBridge instances, mirroring, and the outbox that
 * delivers every call. Rules:
 * - Only what the partner's manifest allows is put into an event (`shareCase`, `relay`): nothing else leaves.
 * - Every outgoing call is written to the outbox in the transaction of the change it announces, so a partner
 *   outage (or our own restart) loses nothing; the partner applies each (handoff id, seq) once.
 * - Inbound events come only from a registered, active partner whose signature verified (the routes check it).
 */
export class ExchangeService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Conversations this node is ending because the partner ended theirs: that end is not echoed back. */
  private readonly endingFromPartner = new Set<string>();
  /** Relays of one conversation run one after another, so the partner receives them in the order written. */
  private readonly relayChains = new Map<string, Promise<void>>();
  /** Ids of messages already relayed by this node (bounded; a message is reported within one call). */
  private readonly relayed = new Set<string>();

  constructor(private readonly d: ExchangeDeps) {}

  // ---- partners (admins) ---------------------------------------------------------------------------------

  private assertAdmin(p: StaffPrincipal): void {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins manage partner agencies');
  }

  private async partnerOf(p: StaffPrincipal, id: string): Promise<PartnerRow> {
    const row = await this.d.repo.partner(id);
    if (!row || row.agencyId !== p.agencyId) throw new AppError('NOT_FOUND', 'Partner agency not found');
    return row;
  }

  private async views(rows: PartnerRow[]): Promise<Partner[]> {
    const ids = rows.map((r) => r.id);
    const [keys, health] = await Promise.all([this.d.repo.keys(ids), this.d.repo.outboxHealth(ids)]);
    const key = (k: KeyRow) => ({ keyId: k.keyId, publicKey: k.publicKey, status: k.status, createdAt: toIso(k.createdAt) });
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      baseUrl: r.baseUrl,
      status: r.status,
      services: r.services,
      manifest: r.manifest,
      offerTimeoutSeconds: r.offerTimeoutSeconds,
      ourKeys: keys.filter((k) => k.partnerId === r.id && k.side === 'ours').map(key),
      theirKeys: keys.filter((k) => k.partnerId === r.id && k.side === 'theirs').map(key),
      pending: health.get(r.id)?.pending ?? 0,
      lastError: health.get(r.id)?.lastError ?? null,
      createdAt: toIso(r.createdAt),
    }));
  }

  async listPartners(p: StaffPrincipal): Promise<Partner[]> {
    this.assertAdmin(p);
    return this.views(await this.d.repo.partners(p.agencyId));
  }

  async getPartner(p: StaffPrincipal, id: string): Promise<Partner> {
    this.assertAdmin(p);
    return (await this.views([await this.partnerOf(p, id)]))[0]!;
  }

  /** What agents may offer work to: active partners, with the services they accept. */
  async options(p: StaffPrincipal): Promise<PartnerOption[]> {
    const rows = await this.d.repo.partners(p.agencyId);
    return rows.filter((r) => r.status === 'active').map((r) => ({ id: r.id, name: r.name, services: r.services }));
  }

  private staffAudit(p: StaffPrincipal, action: string, objectType: string, objectId: string, detail: Record<string, unknown>): AuditEntry {
    return { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action, objectType, objectId, outcome: 'success', detail };
  }

  /** Registers a partner and makes our first signing key for it (its public half goes to the partner's admin). */
  async createPartner(p: StaffPrincipal, input: z.output<typeof PartnerInput>): Promise<Partner> {
    this.assertAdmin(p);
    const pair = newKeyPair();
    let row: PartnerRow;
    try {
      row = await this.d.db.transaction(async (tx) => {
        const made = await this.d.repo.insertPartner(tx, { agencyId: p.agencyId, ...input });
        await this.d.repo.insertKey(tx, {
          partnerId: made.id,
          keyId: pair.keyId,
          side: 'ours',
          publicKey: pair.publicKey,
          privateKeySealed: this.d.box.seal(pair.privateKey),
          status: 'active',
        });
        await this.d.audit.record(this.staffAudit(p, 'exchange.partner_create', 'exchange_partner', made.id, { keyId: pair.keyId }), tx);
        return made;
      });
    } catch (err) {
      if (pgErrorCode(err) === '23505') throw invalid('name', 'A partner agency with this name is already registered');
      throw err;
    }
    return (await this.views([row]))[0]!;
  }

  async updatePartner(p: StaffPrincipal, id: string, patch: z.output<typeof PartnerPatch>): Promise<Partner> {
    this.assertAdmin(p);
    await this.partnerOf(p, id);
    let row: PartnerRow | undefined;
    try {
      row = await this.d.db.transaction(async (tx) => {
        const r = await this.d.repo.updatePartner(tx, id, patch);
        const action = patch.status === 'revoked' ? 'exchange.partner_revoke' : patch.status === 'active' ? 'exchange.partner_restore' : 'exchange.partner_update';
        await this.d.audit.record(this.staffAudit(p, action, 'exchange_partner', id, { fields: Object.keys(patch) }), tx);
        return r;
      });
    } catch (err) {
      if (pgErrorCode(err) === '23505') throw invalid('name', 'A partner agency with this name is already registered');
      throw err;
    }
    return (await this.views([row!]))[0]!;
  }

  /** Registers one of the partner's public keys; any active one verifies, so they can rotate without downtime. */
  async addTheirKey(p: StaffPrincipal, id: string, input: PartnerKeyInput): Promise<Partner> {
    this.assertAdmin(p);
    const partner = await this.partnerOf(p, id);
    if (!parsePublicKey(input.publicKey)) throw invalid('publicKey', 'This is not an Ed25519 public key in PEM form');
    try {
      await this.d.db.transaction(async (tx) => {
        await this.d.repo.insertKey(tx, { partnerId: id, keyId: input.keyId, side: 'theirs', publicKey: input.publicKey, status: 'active' });
        await this.d.audit.record(this.staffAudit(p, 'exchange.key_add', 'exchange_partner', id, { keyId: input.keyId }), tx);
      });
    } catch (err) {
      if (pgErrorCode(err) === '23505') throw invalid('keyId', 'A key with this id is already registered');
      throw err;
    }
    return (await this.views([partner]))[0]!;
  }

  async revokeTheirKey(p: StaffPrincipal, id: string, keyId: string): Promise<Partner> {
    this.assertAdmin(p);
    const partner = await this.partnerOf(p, id);
    const done = await this.d.db.transaction(async (tx) => {
      const ok = await this.d.repo.setKeyStatus(tx, id, keyId, 'theirs', ['active'], 'revoked');
      if (ok) await this.d.audit.record(this.staffAudit(p, 'exchange.key_revoke', 'exchange_partner', id, { keyId }), tx);
      return ok;
    });
    if (!done) throw new AppError('NOT_FOUND', 'No active key with this id');
    return (await this.views([partner]))[0]!;
  }

  /**
   * A new signing key of ours. It starts as `next` (published, not yet signing) while another key signs, so the
   * partner can register it first; `promoteOurKey` then makes it sign and retires the old one.
   */
  async newOurKey(p: StaffPrincipal, id: string): Promise<Partner> {
    this.assertAdmin(p);
    const partner = await this.partnerOf(p, id);
    const pair = newKeyPair();
    // Read before the transaction: PGlite has one connection, so a query beside an open transaction would wait forever.
    const hasActive = Boolean(await this.d.repo.signingKey(id));
    await this.d.db.transaction(async (tx) => {
      await this.d.repo.insertKey(tx, {
        partnerId: id,
        keyId: pair.keyId,
        side: 'ours',
        publicKey: pair.publicKey,
        privateKeySealed: this.d.box.seal(pair.privateKey),
        status: hasActive ? 'next' : 'active',
      });
      await this.d.audit.record(this.staffAudit(p, 'exchange.key_create', 'exchange_partner', id, { keyId: pair.keyId }), tx);
    });
    return (await this.views([partner]))[0]!;
  }

  async promoteOurKey(p: StaffPrincipal, id: string, keyId: string): Promise<Partner> {
    this.assertAdmin(p);
    const partner = await this.partnerOf(p, id);
    const current = await this.d.repo.signingKey(id);
    const ok = await this.d.db.transaction(async (tx) => {
      if (!(await this.d.repo.setKeyStatus(tx, id, keyId, 'ours', ['next'], 'active'))) return false;
      if (current) await this.d.repo.setKeyStatus(tx, id, current.keyId, 'ours', ['active'], 'retired');
      await this.d.audit.record(this.staffAudit(p, 'exchange.key_promote', 'exchange_partner', id, { keyId, retired: current?.keyId ?? null }), tx);
      return true;
    });
    if (!ok) throw new AppError('NOT_FOUND', 'No new key with this id');
    return (await this.views([partner]))[0]!;
  }

  // ---- offering work (the sending side) ------------------------------------------------------------------

  /**
   * What crosses over with an offer: reference, status and stage always (to link and mirror), everything else only
   * when the partner's manifest names it. This function is the one place shared data is chosen.
   */
  private async shareCase(manifest: DataManifest, kase: CaseRow, conv: ConversationView | undefined): Promise<SharedCase> {
    const m = DataManifest.parse(manifest);
    const shared: SharedCase = { reference: kase.reference, status: kase.status, stage: kase.stage as Stage };
    if (m.caseFields.includes('title')) shared.title = kase.title;
    if (m.caseFields.includes('priority')) shared.priority = kase.priority;
    const custom = Object.fromEntries(Object.entries(kase.customFields).filter(([k]) => m.caseFields.includes(k)));
    if (Object.keys(custom).length) shared.customFields = custom;
    if (m.constituent.length) {
      const person = (await this.d.cases.constituentOf(kase))?.person;
      if (person) {
        shared.constituent = {};
        if (m.constituent.includes('name')) shared.constituent.name = person.displayName;
        if (m.constituent.includes('email')) shared.constituent.email = person.email;
        if (m.constituent.includes('phone')) shared.constituent.phone = person.phone;
        if (m.constituent.includes('language')) shared.constituent.language = person.language;
      }
    }
    if (conv && (m.timeline.includes('public_messages') || m.timeline.includes('internal_notes'))) {
      const rows = await this.d.messages.listAfter(conv.id, 0, 500, !m.timeline.includes('internal_notes'));
      shared.transcript = rows
        .filter((r) => r.visibility === 'public' ? m.timeline.includes('public_messages') : m.timeline.includes('internal_notes'))
        .map((r) => ({
          from: r.visibility === 'internal' ? ('note' as const) : r.authorKind === 'constituent' ? ('constituent' as const) : ('agency' as const),
          name: r.authorKind === 'constituent' ? null : r.authorName,
          body: r.body,
          at: toIso(r.createdAt),
        }));
    }
    if (m.timeline.includes('case_events')) {
      shared.events = (await this.d.cases.timeline(kase.id)).map((e) => ({ kind: e.event.kind, at: toIso(e.event.createdAt) }));
    }
    return shared;
  }

  async offer(p: StaffPrincipal, input: z.output<typeof OfferInput>): Promise<Handoff> {
    if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins can read conversations but not take part in them');
    const partner = await this.d.repo.partner(input.partnerId);
    if (!partner || partner.agencyId !== p.agencyId || partner.status !== 'active') throw invalid('partnerId', 'No such partner agency');
    if (!(await this.d.repo.signingKey(partner.id))) throw new AppError('CONFLICT', `${partner.name} has no signing key yet: ask an admin to finish setting up the partner`);
    if (input.serviceId && !partner.services.some((s) => s.id === input.serviceId)) throw invalid('serviceId', `${partner.name} does not accept that service`);

    let conv: ConversationView | undefined;
    let kase: CaseRow | undefined;
    if (input.conversationId) {
      conv = await this.d.conversationService.get(p, input.conversationId);
      assertStaffCanAct(p, conv);
      if (conv.status === 'ended') throw new AppError('CONFLICT', 'This conversation has ended');
      if (conv.assigneeId !== p.userId && p.role !== 'supervisor') throw new AppError('FORBIDDEN', 'Take this conversation before handing it over');
      if (!partner.manifest.timeline.includes('public_messages')) {
        throw new AppError('CONFLICT', `The data-sharing manifest for ${partner.name} does not let messages cross, which a live conversation needs`);
      }
      kase = await this.d.cases.findById(conv.caseId);
    } else {
      kase = await this.d.cases.findById(input.caseId!);
      const visible = kase && kase.agencyId === p.agencyId && (p.groupIds.includes(kase.groupId ?? '') || kase.assigneeId === p.userId);
      if (!visible) throw new AppError('NOT_FOUND', 'Case not found');
    }
    if (!kase) throw new AppError('NOT_FOUND', 'Case not found');
    if (await this.d.repo.openFor(conv ? { conversationId: conv.id } : { caseId: kase.id })) {
      throw new AppError('CONFLICT', 'This is already being handed to a partner agency');
    }

    const handoffId = randomUUID();
    const shared = await this.shareCase(partner.manifest, kase, conv);
    const expiresAt = new Date(this.d.now().getTime() + partner.offerTimeoutSeconds * 1000).toISOString();
    const kind = conv ? ('conversation' as const) : ('case' as const);
    const { row, note } = await this.d.db.transaction(async (tx) => {
      const row = await this.d.repo.insertHandoff(tx, {
        handoffId,
        direction: 'outbound',
        agencyId: p.agencyId,
        partnerId: partner.id,
        kind,
        state: 'offered',
        caseId: kase.id,
        conversationId: conv?.id ?? null,
        groupId: conv?.groupId ?? kase.groupId,
        offeredBy: p.userId,
        serviceId: input.serviceId ?? null,
        note: input.note,
        expiresAt,
        syncedState: `${kase.status}|${kase.stage}`,
      });
      await this.d.repo.enqueue(tx, row.id, partner.id, (seq) => ({
        kind: 'offer',
        handoffId,
        seq,
        data: { handoffKind: kind, serviceId: input.serviceId ?? null, note: input.note, expiresAt, shared },
      }));
      await this.d.cases.addEvent(tx, {
        caseId: kase.id,
        kind: 'exchange.offered',
        actorKind: 'agent',
        actorUserId: p.userId,
        conversationId: conv?.id ?? null,
        data: { handoffId, partner: partner.name, note: input.note },
      });
      const note = conv
        ? await this.d.messages.append(
            {
              conversationId: conv.id,
              clientMessageId: null,
              authorKind: 'system',
              visibility: 'internal',
              body: `${p.displayName} offered this conversation to ${partner.name}: ${input.note}`,
              channel: conv.channel,
            },
            tx,
          )
        : undefined;
      await this.d.audit.record(this.staffAudit(p, 'exchange.offer', kind, conv?.id ?? kase.id, { handoffId, partnerId: partner.id, caseId: kase.id }), tx);
      return { row, note };
    });
    if (note && conv) this.d.notifier.messageCreated(toMessage(note.message), conv);
    this.kick();
    return this.view({ ...row, partnerName: partner.name, groupName: conv?.groupName ?? null });
  }

  // ---- deciding an incoming offer (the receiving side) -----------------------------------------------------

  private async inboundFor(p: StaffPrincipal, handoffId: string): Promise<HandoffRow> {
    const h = await this.d.repo.handoff(handoffId, 'inbound');
    const visible = h && h.agencyId === p.agencyId && (p.role === 'admin' || p.groupIds.includes(h.groupId ?? ''));
    if (!h || !visible) throw new AppError('NOT_FOUND', 'Handoff not found');
    if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins can read handoffs but not take work');
    return h;
  }

  /** An agent of the chosen group accepts: the case becomes theirs and, for a live chat, the conversation starts here. */
  async accept(p: StaffPrincipal, handoffId: string): Promise<Handoff> {
    const h = await this.inboundFor(p, handoffId);
    if (h.state !== 'offered') throw new AppError('CONFLICT', h.state === 'accepted' ? `${h.acceptedBy ?? 'A colleague'} has already accepted this` : 'This offer is no longer open');
    const kase = h.caseId ? await this.d.cases.findById(h.caseId) : undefined;
    if (!kase) throw new AppError('CONFLICT', 'The linked case no longer exists');
    const partner = (await this.d.repo.partner(h.partnerId))!;
    // Our replies must be allowed to cross back, or the constituent would never hear from us.
    if (h.kind === 'conversation' && !partner.manifest.timeline.includes('public_messages')) {
      throw new AppError('CONFLICT', `Our data-sharing manifest for ${partner.name} does not let messages cross: an admin must allow them before a live chat can be taken`);
    }
    const shared = h.shared ?? ({} as SharedCase);
    const done = await this.d.db.transaction(async (tx) => {
      const row = await this.d.repo.transition(tx, h.id, ['offered'], { state: 'accepted', acceptedBy: p.displayName, decidedAt: new Date().toISOString() });
      if (!row) return undefined;
      let conversationId: string | null = null;
      if (h.kind === 'conversation') {
        const identityId = await this.d.constituents.ensureIdentity(tx, {
          agencyId: h.agencyId,
          constituentId: kase.constituentId!,
          channel: 'web',
          // The constituent's real thread stays with the partner; here it is addressed by the handoff.
          address: `exchange:${h.handoffId}`,
        });
        const conv = await this.d.conversations.create(tx, {
          agencyId: h.agencyId,
          constituentId: kase.constituentId!,
          channelIdentityId: identityId,
          channel: 'web',
          groupId: h.groupId!,
          caseId: kase.id,
          language: shared.constituent?.language === 'es' ? 'es' : 'en',
        });
        await this.d.conversations.claim(conv.id, p.userId, tx);
        conversationId = conv.id;
        // The conversation so far, so the constituent never has to repeat themselves.
        await this.d.messages.append(
          { conversationId: conv.id, clientMessageId: null, authorKind: 'system', visibility: 'internal', body: `Handed over by ${partner.name} (their case ${shared.reference}). Note: ${h.note}`, channel: 'web' },
          tx,
        );
        for (const [i, t] of (shared.transcript ?? []).entries()) {
          await this.d.messages.append(
            t.from === 'constituent'
              ? { conversationId: conv.id, clientMessageId: `xchg-history:${h.handoffId}:${i}`, authorKind: 'constituent', authorConstituentId: kase.constituentId, visibility: 'public', body: t.body, channel: 'web' }
              : {
                  conversationId: conv.id,
                  clientMessageId: `xchg-history:${h.handoffId}:${i}`,
                  authorKind: 'system',
                  visibility: 'internal',
                  body: `${t.from === 'note' ? 'Note' : (t.name ?? partner.name)} (${partner.name}): ${t.body}`,
                  channel: 'web',
                },
            tx,
          );
        }
        await this.d.repo.transition(tx, h.id, ['accepted'], { conversationId });
        await this.d.cases.addEvent(tx, { caseId: kase.id, kind: 'conversation.started', actorKind: 'system', conversationId, data: { channel: 'exchange', handoffId: h.handoffId } });
      }
      await this.d.cases.assign(tx, kase.id, p.userId);
      await this.d.cases.addEvent(tx, {
        caseId: kase.id,
        kind: 'exchange.accepted',
        actorKind: 'agent',
        actorUserId: p.userId,
        conversationId,
        data: { handoffId: h.handoffId, from: partner.name, remoteReference: h.remoteReference },
      });
      await this.d.repo.enqueue(tx, h.id, partner.id, (seq) => ({ kind: 'accept', handoffId: h.handoffId, seq, data: { reference: kase.reference, agentName: p.displayName } }));
      await this.d.audit.record(this.staffAudit(p, 'exchange.accept', 'case', kase.id, { handoffId: h.handoffId, partnerId: partner.id, conversationId }), tx);
      return { conversationId };
    });
    if (!done) throw new AppError('CONFLICT', 'Someone else decided on this offer first');
    if (done.conversationId) {
      const view = (await this.d.conversations.findView(done.conversationId))!;
      this.d.notifier.conversationCreated(toSummary(view));
    }
    const after = await this.d.cases.findById(kase.id);
    if (after) {
      this.d.announceCase(after);
      await this.caseChanged(after.id);
    }
    this.kick();
    return this.viewOf(h.agencyId, h.handoffId, 'inbound');
  }

  async decline(p: StaffPrincipal, handoffId: string, reason: string): Promise<Handoff> {
    const h = await this.inboundFor(p, handoffId);
    if (h.state !== 'offered') throw new AppError('CONFLICT', 'This offer is no longer open');
    const ok = await this.closeInbound(h, 'declined', reason, p);
    if (!ok) throw new AppError('CONFLICT', 'Someone else decided on this offer first');
    this.kick();
    return this.viewOf(h.agencyId, h.handoffId, 'inbound');
  }

  /** Declined here, or withdrawn / lapsed on the other side: the linked case is cancelled with the reason. */
  private async closeInbound(
    h: HandoffRow,
    state: 'declined' | 'expired',
    reason: string,
    p?: StaffPrincipal,
    from: HandoffRow['state'][] = ['offered'],
  ): Promise<boolean> {
    const kase = h.caseId ? await this.d.cases.findById(h.caseId) : undefined;
    const partnerName = (await this.d.repo.partner(h.partnerId))?.name ?? 'The partner agency';
    const changed = await this.d.db.transaction(async (tx) => {
      const row = await this.d.repo.transition(tx, h.id, from, { state, reason, decidedAt: new Date().toISOString() });
      if (!row) return undefined;
      let ended: { id: string; note: Awaited<ReturnType<MessageRepository['append']>> } | undefined;
      if (h.conversationId && (await this.d.conversations.end(h.conversationId, tx))) {
        const note = await this.d.messages.append(
          { conversationId: h.conversationId, clientMessageId: `xchg:${h.handoffId}:withdrawn`, authorKind: 'system', visibility: 'internal', body: `${partnerName} withdrew this handoff (${reason}): the constituent is no longer connected here.`, channel: 'web' },
          tx,
        );
        ended = { id: h.conversationId, note };
      }
      let after: CaseRow | undefined;
      if (kase && kase.status !== 'cancelled' && kase.status !== 'closed') {
        after = await this.d.cases.update(tx, kase.id, kase.version, { status: 'cancelled' });
      }
      if (kase) {
        await this.d.cases.addEvent(tx, {
          caseId: kase.id,
          kind: state === 'declined' ? 'exchange.declined' : 'exchange.withdrawn',
          actorKind: p ? 'agent' : 'system',
          actorUserId: p?.userId ?? null,
          data: { handoffId: h.handoffId, reason },
        });
      }
      if (state === 'declined') {
        await this.d.repo.enqueue(tx, h.id, h.partnerId, (seq) => ({ kind: 'decline', handoffId: h.handoffId, seq, data: { reason } }));
      }
      await this.d.audit.record(
        p
          ? this.staffAudit(p, 'exchange.decline', 'case', h.caseId ?? h.handoffId, { handoffId: h.handoffId, partnerId: h.partnerId })
          : { agencyId: h.agencyId, actorKind: 'system', actorId: null, action: 'exchange.withdrawn', objectType: 'case', objectId: h.caseId ?? h.handoffId, outcome: 'success', detail: { handoffId: h.handoffId, partnerId: h.partnerId } },
        tx,
      );
      return { after, ended };
    });
    if (changed?.after) this.d.announceCase(changed.after);
    if (changed?.ended) {
      const view = await this.d.conversations.findView(changed.ended.id);
      if (view) {
        this.d.notifier.messageCreated(toMessage(changed.ended.note.message), view);
        this.d.notifier.conversationUpdated(toSummary(view));
      }
    }
    return Boolean(changed);
  }

  // ---- views ---------------------------------------------------------------------------------------------

  private view(r: Row): Handoff {
    return {
      id: r.handoffId,
      direction: r.direction,
      kind: r.kind,
      state: r.state,
      partnerId: r.partnerId,
      partnerName: r.partnerName,
      caseId: r.caseId,
      caseReference: null,
      conversationId: r.conversationId,
      remoteReference: r.remoteReference,
      groupId: r.groupId,
      groupName: r.groupName,
      note: r.note,
      reason: r.reason,
      acceptedBy: r.acceptedBy,
      shared: r.direction === 'inbound' ? (r.shared ?? null) : null,
      expiresAt: r.expiresAt ? toIso(r.expiresAt) : null,
      createdAt: toIso(r.createdAt),
      decidedAt: r.decidedAt ? toIso(r.decidedAt) : null,
    };
  }

  private async withReferences(rows: Row[]): Promise<Handoff[]> {
    return Promise.all(
      rows.map(async (r) => ({ ...this.view(r), caseReference: r.caseId ? ((await this.d.cases.referenceOf(r.caseId))?.reference ?? null) : null })),
    );
  }

  private async viewOf(agencyId: string, handoffId: string, direction: HandoffRow['direction']): Promise<Handoff> {
    const [row] = await this.d.repo.list(agencyId, { handoffId, direction });
    return (await this.withReferences([row!]))[0]!;
  }

  /** Handoffs a staff member may see: of their groups, or offered by them; admins see all of their agency's. */
  async list(p: StaffPrincipal, q: z.output<typeof HandoffQuery>): Promise<Handoff[]> {
    const rows = await this.d.repo.list(p.agencyId, q);
    const visible = rows.filter((r) => p.role === 'admin' || p.groupIds.includes(r.groupId ?? '') || r.offeredBy === p.userId || (r.conversationId !== null && q.conversationId === r.conversationId));
    // A conversation filter is only answered for a conversation the principal may see.
    if (q.conversationId) await this.d.conversationService.get(p, q.conversationId);
    return this.withReferences(visible);
  }

  async get(p: StaffPrincipal, handoffId: string): Promise<Handoff[]> {
    const rows = await this.d.repo.list(p.agencyId, { handoffId });
    const visible = rows.filter((r) => p.role === 'admin' || p.groupIds.includes(r.groupId ?? '') || r.offeredBy === p.userId);
    if (!visible.length) throw new AppError('NOT_FOUND', 'Handoff not found');
    return this.withReferences(visible);
  }

  // ---- events from the partner (already authenticated by the routes) ---------------------------------------

  async applyInbound(partner: PartnerRow, event: ExchangeEvent): Promise<Record<string, unknown>> {
    switch (event.kind) {
      case 'offer':
        return this.receiveOffer(partner, event);
      case 'accept':
      case 'decline':
        return this.partnerDecided(partner, event);
      case 'withdraw': {
        // Also after our accept: they gave up waiting before our answer reached them (it crossed with this), so
        // the work is theirs again and our side closes rather than chat into nothing.
        const h = await this.linked(partner, event.handoffId, 'inbound');
        const closed = h.state === 'offered' || h.state === 'accepted' ? await this.closeInbound(h, 'expired', event.data.reason, undefined, [h.state]) : false;
        return { withdrawn: closed, state: closed ? 'expired' : h.state };
      }
      case 'message':
        return this.receiveMessage(partner, event);
      case 'status':
        return this.receiveStatus(partner, event);
      case 'ended':
        return this.receiveEnded(partner, event);
    }
  }

  /** The handoff this partner is a party to; another partner's handoff id is unknown here (never probed). */
  private async linked(partner: PartnerRow, handoffId: string, direction?: HandoffRow['direction']): Promise<HandoffRow> {
    const rows = direction
      ? [await this.d.repo.handoff(handoffId, direction)]
      : [await this.d.repo.handoff(handoffId, 'outbound'), await this.d.repo.handoff(handoffId, 'inbound')];
    const h = rows.find((r) => r && r.partnerId === partner.id);
    if (!h) throw new AppError('NOT_FOUND', 'Unknown handoff');
    return h;
  }

  private async receiveOffer(partner: PartnerRow, event: Extract<ExchangeEvent, { kind: 'offer' }>): Promise<Record<string, unknown>> {
    const existing = await this.d.repo.handoff(event.handoffId, 'inbound');
    if (existing) {
      if (existing.partnerId !== partner.id) throw new AppError('CONFLICT', 'Handoff id already in use');
      return { reference: existing.caseId ? (await this.d.cases.referenceOf(existing.caseId))?.reference : null };
    }
    const { shared } = event.data;
    const agencyId = partner.agencyId;
    const agency = (await this.d.agencies.findById(agencyId))!;
    // The partner names one of our services; our own catalog and routing rules decide what it means here.
    const service = event.data.serviceId ? await this.d.caseTypes.findPublished(agencyId, event.data.serviceId, 'web') : undefined;
    const caseType = service ? await this.d.caseTypes.get(agencyId, service.caseTypeId) : undefined;
    const language = shared.constituent?.language === 'es' ? 'es' : 'en';
    const fallback = caseType?.defaultGroupId ?? (await this.d.agencies.defaultGroupId(agencyId)) ?? null;
    const route = await this.d.decideRoute(
      agencyId,
      { serviceId: service?.id ?? null, caseTypeId: caseType?.id ?? null, channel: 'web', language, priority: shared.priority ?? caseType?.defaultPriority ?? 'normal', returning: false },
      fallback,
    );
    if (!route.groupId) throw new AppError('UNAVAILABLE', 'This agency has no group to take the work', { retryable: false });
    const made = await this.d.db.transaction(async (tx) => {
      // A new constituent record holding only what crossed over (never matched to an existing person by
      // unverified details from another agency).
      const personId = await this.d.repo.insertConstituent(tx, {
        agencyId,
        displayName: shared.constituent?.name ?? null,
        email: shared.constituent?.email ?? null,
        phone: shared.constituent?.phone ?? null,
        language,
      });
      const reference = await this.d.cases.nextReference(tx, agencyId, caseType?.prefix ?? agency.casePrefix, this.d.now().getUTCFullYear());
      const kase = await this.d.cases.create(tx, {
        agencyId,
        reference,
        title: shared.title ?? `Handed over by ${partner.name}`,
        constituentId: personId,
        groupId: route.groupId!,
        caseTypeId: caseType?.id ?? null,
        priority: route.priority,
      });
      await this.d.caseStarted(tx, kase);
      await this.d.repo.insertHandoff(tx, {
        handoffId: event.handoffId,
        direction: 'inbound',
        agencyId,
        partnerId: partner.id,
        kind: event.data.handoffKind,
        state: 'offered',
        caseId: kase.id,
        remoteReference: shared.reference,
        groupId: route.groupId!,
        serviceId: service?.id ?? null,
        note: event.data.note,
        shared,
        expiresAt: event.data.expiresAt,
        syncedState: `${shared.status}|${shared.stage}`,
        // Our own events for this handoff start after the partner's offer (seq 0 is theirs).
        outSeq: 1,
      });
      await this.d.cases.addEvent(tx, {
        caseId: kase.id,
        kind: 'exchange.received',
        actorKind: 'system',
        data: { handoffId: event.handoffId, from: partner.name, remoteReference: shared.reference, note: event.data.note, kind: event.data.handoffKind },
      });
      await this.d.audit.record(
        { agencyId, actorKind: 'system', actorId: null, action: 'exchange.receive', objectType: 'case', objectId: kase.id, outcome: 'success', detail: { handoffId: event.handoffId, partnerId: partner.id } },
        tx,
      );
      return kase;
    });
    this.d.announceCase(made);
    return { reference: made.reference };
  }

  /** The partner accepted or declined our offer. */
  private async partnerDecided(partner: PartnerRow, event: Extract<ExchangeEvent, { kind: 'accept' | 'decline' }>): Promise<Record<string, unknown>> {
    const h = await this.linked(partner, event.handoffId, 'outbound');
    if (h.state !== 'offered') return { applied: false, state: h.state };
    if (event.kind === 'decline') {
      const ok = await this.returnWork(h, 'declined', `${partner.name} declined: ${event.data.reason}`, event.data.reason);
      return { applied: ok, state: ok ? 'declined' : h.state };
    }
    const conv = h.conversationId ? await this.d.conversations.findView(h.conversationId) : undefined;
    const liveConv = conv && conv.status !== 'ended' ? conv : undefined;
    const texted = liveConv ? (this.d.texts?.deliveryFor(liveConv) ?? null) : null;
    const result = await this.d.db.transaction(async (tx) => {
      const row = await this.d.repo.transition(tx, h.id, ['offered'], {
        state: 'accepted',
        remoteReference: event.data.reference,
        acceptedBy: `${event.data.agentName} (${partner.name})`,
        decidedAt: new Date().toISOString(),
      });
      if (!row) return undefined;
      let notice;
      if (liveConv) {
        await this.d.repo.releaseConversation(tx, liveConv.id);
        // Told plainly, in the thread they already use, who is helping them now.
        notice = await this.d.messages.append(
          {
            conversationId: liveConv.id,
            clientMessageId: `xchg:${h.handoffId}:accepted`,
            authorKind: 'system',
            visibility: 'public',
            body: constituentText(liveConv.language).partnerHelping(partner.name, event.data.agentName),
            channel: liveConv.channel,
            deliveryStatus: texted,
          },
          tx,
        );
      }
      if (h.caseId && h.offeredBy) await this.d.cases.unassign(tx, h.caseId, h.offeredBy);
      if (h.caseId) {
        await this.d.cases.addEvent(tx, {
          caseId: h.caseId,
          kind: 'exchange.accepted',
          actorKind: 'system',
          conversationId: h.conversationId,
          data: { handoffId: h.handoffId, partner: partner.name, remoteReference: event.data.reference, agentName: event.data.agentName },
        });
      }
      await this.d.audit.record(
        { agencyId: h.agencyId, actorKind: 'system', actorId: null, action: 'exchange.accepted', objectType: h.kind, objectId: h.conversationId ?? h.caseId ?? h.handoffId, outcome: 'success', detail: { handoffId: h.handoffId, partnerId: partner.id, remoteReference: event.data.reference } },
        tx,
      );
      return { notice };
    });
    if (!result) return { applied: false };
    if (liveConv) {
      await this.catchUp(h, liveConv.id);
      if (result.notice) {
        this.d.notifier.messageCreated(toMessage(result.notice.message), liveConv);
        if (texted) void this.d.texts!.deliver(result.notice.message.id).catch(() => undefined);
      }
      const after = await this.d.conversations.findView(liveConv.id);
      if (after) this.d.notifier.conversationUpdated(toSummary(after), liveConv);
      if (liveConv.status === 'queued') await this.d.queue.announce(liveConv.groupId).catch(() => undefined);
    }
    if (h.offeredBy) this.d.routing.agentFreed(h.offeredBy);
    if (h.caseId) {
      const kase = await this.d.cases.findById(h.caseId);
      if (kase) this.d.announceCase(kase);
    }
    return { applied: true, state: 'accepted' };
  }

  /**
   * What was written while the offer waited (the offer carried the conversation up to then): sent now, in order,
   * so the partner's agent has every word and the constituent never repeats themselves.
   */
  private async catchUp(h: HandoffRow, conversationId: string): Promise<void> {
    const offeredAt = Date.parse(toIso(h.createdAt));
    const rows = (await this.d.messages.listAfter(conversationId, 0, 2000, true)).filter(
      (r) => r.authorKind !== 'system' && Date.parse(toIso(r.createdAt)) > offeredAt,
    );
    if (!rows.length) return;
    await this.d.db.transaction(async (tx) => {
      for (const r of rows) {
        await this.d.repo.enqueue(tx, h.id, h.partnerId, (seq) => ({
          kind: 'message',
          handoffId: h.handoffId,
          seq,
          data: { from: r.authorKind === 'constituent' ? 'constituent' : 'agency', name: r.authorKind === 'constituent' ? null : r.authorName, body: r.body, at: toIso(r.createdAt), messageId: r.id },
        }), { messageId: r.id });
      }
    });
    this.kick();
  }

  /**
   * Declined or unanswered: the conversation goes back to its group's queue keeping its original arrival time
   * (so its place in line), the case back to its group, and the reason goes on the timeline.
   */
  private async returnWork(h: HandoffRow, state: 'declined' | 'expired', note: string, reason: string): Promise<boolean> {
    const conv = h.conversationId ? await this.d.conversations.findView(h.conversationId) : undefined;
    const result = await this.d.db.transaction(async (tx) => {
      const row = await this.d.repo.transition(tx, h.id, ['offered'], { state, reason, decidedAt: new Date().toISOString() });
      if (!row) return undefined;
      let requeued = false;
      if (conv && conv.status === 'active' && conv.assigneeId && conv.assigneeId === h.offeredBy) {
        requeued = Boolean(await this.d.conversations.returnToQueue(tx, conv.id, conv.assigneeId));
      }
      if (h.caseId && h.offeredBy) await this.d.cases.unassign(tx, h.caseId, h.offeredBy);
      const message = conv
        ? await this.d.messages.append(
            { conversationId: conv.id, clientMessageId: `xchg:${h.handoffId}:${state}`, authorKind: 'system', visibility: 'internal', body: `${note}. ${requeued ? 'Back in the queue, keeping its place.' : ''}`.trim(), channel: conv.channel },
            tx,
          )
        : undefined;
      if (h.caseId) {
        await this.d.cases.addEvent(tx, {
          caseId: h.caseId,
          kind: state === 'declined' ? 'exchange.declined' : 'exchange.expired',
          actorKind: 'system',
          conversationId: h.conversationId,
          data: { handoffId: h.handoffId, reason, requeued },
        });
      }
      // An offer still waiting in our outbox (the partner was down all along) is simply never sent; otherwise the
      // partner is told to withdraw it (its own copy also lapses at the same time, should that call be lost).
      const cancelled = state === 'expired' ? await this.d.repo.cancelUnsent(tx, h.handoffId, h.partnerId) : [];
      if (state === 'expired' && !cancelled.includes('offer')) {
        await this.d.repo.enqueue(tx, h.id, h.partnerId, (seq) => ({ kind: 'withdraw', handoffId: h.handoffId, seq, data: { reason } }));
      }
      await this.d.audit.record(
        { agencyId: h.agencyId, actorKind: 'system', actorId: null, action: state === 'declined' ? 'exchange.declined' : 'exchange.expired', objectType: h.kind, objectId: h.conversationId ?? h.caseId ?? h.handoffId, outcome: 'success', detail: { handoffId: h.handoffId, partnerId: h.partnerId, requeued } },
        tx,
      );
      return { requeued, message };
    });
    if (!result) return false;
    if (conv) {
      if (result.message) this.d.notifier.messageCreated(toMessage(result.message.message), conv);
      const after = await this.d.conversations.findView(conv.id);
      if (after) this.d.notifier.conversationUpdated(toSummary(after), conv);
      if (result.requeued) {
        await this.d.queue.announce(conv.groupId).catch(() => undefined);
        this.d.routing.queueChanged(conv.groupId);
        if (h.offeredBy) this.d.routing.agentFreed(h.offeredBy);
      }
    }
    if (h.caseId) {
      const kase = await this.d.cases.findById(h.caseId);
      if (kase) this.d.announceCase(kase);
    }
    return true;
  }

  private async receiveMessage(partner: PartnerRow, event: Extract<ExchangeEvent, { kind: 'message' }>): Promise<Record<string, unknown>> {
    const h = await this.linked(partner, event.handoffId);
    if (h.state !== 'accepted') throw new AppError('CONFLICT', 'This handoff is not active');
    const clientMessageId = `xchg:${h.handoffId}:${h.direction}:${event.seq}`;
    const conv = h.conversationId ? await this.d.conversations.findView(h.conversationId) : undefined;
    if (conv && conv.status !== 'ended') {
      // On the sending side, a reply from the partner's agent goes to the constituent's own thread (web or SMS);
      // on the receiving side, the constituent's words reach the partner's agent.
      const fromConstituent = event.data.from === 'constituent' && h.direction === 'inbound';
      const texted = !fromConstituent ? (this.d.texts?.deliveryFor(conv) ?? null) : null;
      const { message, created } = await this.d.messages.append(
        fromConstituent
          ? { conversationId: conv.id, clientMessageId, authorKind: 'constituent', authorConstituentId: conv.constituentId, visibility: 'public', body: event.data.body, channel: conv.channel }
          : {
              conversationId: conv.id,
              clientMessageId,
              authorKind: 'system',
              authorName: event.data.name,
              visibility: 'public',
              body: `${event.data.name ?? 'Agent'} (${partner.name}): ${event.data.body}`,
              channel: conv.channel,
              deliveryStatus: texted,
            },
      );
      if (created) {
        this.d.notifier.messageCreated(toMessage(message), conv);
        if (texted) void this.d.texts!.deliver(message.id).catch(() => undefined);
      }
      return { stored: true };
    }
    // A case handed over without a live chat: the partner's public reply goes on our timeline.
    if (h.caseId) {
      await this.d.cases.addEvent(this.d.db, {
        caseId: h.caseId,
        kind: 'exchange.reply',
        actorKind: 'system',
        data: { handoffId: h.handoffId, partner: partner.name, from: event.data.from, name: event.data.name, body: event.data.body, seq: event.seq },
      });
    }
    return { stored: true };
  }

  private async receiveStatus(partner: PartnerRow, event: Extract<ExchangeEvent, { kind: 'status' }>): Promise<Record<string, unknown>> {
    const h = await this.linked(partner, event.handoffId);
    if (h.state !== 'accepted' || !h.caseId) throw new AppError('CONFLICT', 'This handoff is not active');
    const state = `${event.data.status}|${event.data.stage}`;
    const kase = await this.d.cases.findById(h.caseId);
    if (!kase) throw new AppError('CONFLICT', 'The linked case no longer exists');
    if (`${kase.status}|${kase.stage}` === state) {
      await this.d.repo.setSynced(this.d.db, h.id, state);
      return { applied: false };
    }
    // A mirror, not a decision: the partner's workflow already allowed it. Recorded as such on timeline and audit.
    const after = await this.d.db.transaction(async (tx) => {
      const row = await this.d.cases.update(tx, kase.id, kase.version, {
        status: event.data.status,
        stage: event.data.stage,
        ...(event.data.status === 'resolved' ? { resolvedAt: new Date().toISOString() } : {}),
      });
      if (!row) return undefined;
      await this.d.repo.setSynced(tx, h.id, state);
      await this.d.cases.addEvent(tx, {
        caseId: kase.id,
        kind: 'exchange.status_mirrored',
        actorKind: 'system',
        data: { handoffId: h.handoffId, partner: partner.name, from: { status: kase.status, stage: kase.stage }, to: event.data },
      });
      await this.d.audit.record(
        { agencyId: h.agencyId, actorKind: 'system', actorId: null, action: 'exchange.status_mirror', objectType: 'case', objectId: kase.id, outcome: 'success', detail: { handoffId: h.handoffId, partnerId: partner.id, status: event.data.status, stage: event.data.stage } },
        tx,
      );
      return row;
    });
    // Someone changed it here at the same moment: the partner retries, and then sees the fresh state.
    if (!after) throw new AppError('CONFLICT', 'The case changed at the same time; try again');
    this.d.announceCase(after);
    return { applied: true };
  }

  private async receiveEnded(partner: PartnerRow, event: Extract<ExchangeEvent, { kind: 'ended' }>): Promise<Record<string, unknown>> {
    const h = await this.linked(partner, event.handoffId);
    if (!h.conversationId) return { ended: false };
    this.endingFromPartner.add(h.conversationId);
    try {
      const ended = await this.d.db.transaction(async (tx) => {
        const row = await this.d.conversations.end(h.conversationId!, tx);
        if (!row) return undefined;
        await this.d.cases.addEvent(tx, { caseId: row.caseId, kind: 'conversation.ended', actorKind: 'system', conversationId: row.id, data: { handoffId: h.handoffId, by: partner.name } });
        await this.d.audit.record(
          { agencyId: h.agencyId, actorKind: 'system', actorId: null, action: 'exchange.conversation_end', objectType: 'conversation', objectId: row.id, outcome: 'success', detail: { handoffId: h.handoffId, partnerId: partner.id } },
          tx,
        );
        return row;
      });
      if (ended) {
        const view = await this.d.conversations.findView(ended.id);
        if (view) this.d.notifier.conversationUpdated(toSummary(view));
      }
      return { ended: Boolean(ended) };
    } finally {
      this.endingFromPartner.delete(h.conversationId);
    }
  }

  // ---- mirroring what happens here to the partner ----------------------------------------------------------

  /**
   * Called after every message is stored (MessageService's `relay`). Public messages of a conversation in an
   * accepted handoff cross over: the constituent's on the sending side, the agent's on the receiving side.
   * Never throws and never delays the sender: the work happens after the acknowledgement.
   */
  messageCreated(message: Message, conv: { id: string; caseId?: string; exchangeOpen?: boolean }): void {
    // The conversation view already says whether it is handed over: most messages cost nothing here.
    if (message.visibility !== 'public' || conv.exchangeOpen === false) return;
    // Two hooks may report one message (the send path's relay and the notifier, which also sees texts that
    // arrive by SMS): each message crosses once.
    if (this.relayed.has(message.id)) return;
    this.relayed.add(message.id);
    if (this.relayed.size > 5000) this.relayed.delete(this.relayed.values().next().value!);
    const prev = this.relayChains.get(conv.id) ?? Promise.resolve();
    const next = prev
      .then(() => this.relay(message, conv))
      .catch((err: unknown) => this.d.logger.warn({ err, conversationId: conv.id }, 'exchange relay failed'))
      .finally(() => {
        if (this.relayChains.get(conv.id) === next) this.relayChains.delete(conv.id);
      });
    this.relayChains.set(conv.id, next);
  }

  private async relay(message: Message, conv: { id: string; caseId?: string }): Promise<void> {
    const h = (await this.d.repo.openFor({ conversationId: conv.id })) ?? (conv.caseId ? await this.d.repo.openFor({ caseId: conv.caseId }) : undefined);
    if (!h || h.state !== 'accepted') return;
    const author = message.author;
    // The sending side relays what the constituent writes (and anything a supervisor there still says in
    // public, so the two threads never differ); the receiving side what its agents answer. System notices stay.
    if (author.kind === 'system') return;
    if (h.direction === 'inbound' && author.kind !== 'agent') return;
    const partner = await this.d.repo.partner(h.partnerId);
    if (!partner || partner.status !== 'active' || !partner.manifest.timeline.includes('public_messages')) return;
    await this.d.db.transaction((tx) =>
      this.d.repo.enqueue(tx, h.id, partner.id, (seq) => ({
        kind: 'message',
        handoffId: h.handoffId,
        seq,
        data: {
          from: author.kind === 'constituent' ? 'constituent' : 'agency',
          name: author.kind === 'agent' ? author.displayName : null,
          body: message.body,
          at: message.createdAt,
          messageId: message.id,
        },
      }), { messageId: message.id }),
    );
    this.kick();
  }

  /** After any case change (the notifier's caseUpdated): a linked case's new status or stage is mirrored. */
  async caseChanged(caseId: string): Promise<void> {
    const h = await this.d.repo.openFor({ caseId });
    if (!h || h.state !== 'accepted') return;
    const kase = await this.d.cases.findById(caseId);
    if (!kase) return;
    const state = `${kase.status}|${kase.stage}`;
    if (state === h.syncedState) return;
    await this.d.db.transaction(async (tx) => {
      await this.d.repo.setSynced(tx, h.id, state);
      await this.d.repo.enqueue(tx, h.id, h.partnerId, (seq) => ({ kind: 'status', handoffId: h.handoffId, seq, data: { status: kase.status, stage: kase.stage as Stage } }));
      await this.d.audit.record(
        { agencyId: h.agencyId, actorKind: 'system', actorId: null, action: 'exchange.status_sent', objectType: 'case', objectId: caseId, outcome: 'success', detail: { handoffId: h.handoffId, partnerId: h.partnerId, status: kase.status, stage: kase.stage } },
        tx,
      );
    });
    this.kick();
  }

  /** After any conversation change (the notifier's conversationUpdated): ending a linked conversation ends the other. */
  async conversationChanged(summary: ConversationSummary): Promise<void> {
    if (summary.status !== 'ended' || this.endingFromPartner.has(summary.id)) return;
    const [h] = (await this.d.repo.list(summary.agencyId, { conversationId: summary.id, state: 'accepted' }));
    if (!h) return;
    await this.d.db.transaction((tx) => this.d.repo.enqueue(tx, h.id, h.partnerId, (seq) => ({ kind: 'ended', handoffId: h.handoffId, seq, data: {} })));
    this.kick();
  }

  // ---- the worker ----------------------------------------------------------------------------------------

  start(): void {
    if (this.timer || this.d.intervalMs <= 0) return;
    this.timer = setInterval(() => this.kick(), this.d.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Runs the worker soon; a kick while it runs makes it go round once more (nothing waits a whole interval). */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.tick().catch((err: unknown) => this.d.logger.warn({ err }, 'exchange worker failed; it runs again soon'));
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** One pass: lapsed offers, old nonces, then every due outbox event. Returns how many events were delivered. */
  async tick(): Promise<number> {
    // Most deployments have no partner: one cheap look, and no lock taken, every interval.
    if (!(await this.d.repo.anyPartner())) return 0;
    return (
      (await this.d.exclusive(async () => {
        const now = this.d.now().toISOString();
        for (const h of await this.d.repo.lapsedOffers(now)) {
          if (h.direction === 'outbound') {
            const partner = await this.d.repo.partner(h.partnerId);
            await this.returnWork(h, 'expired', `No answer from ${partner?.name ?? 'the partner agency'} in time`, 'No answer in time');
          } else {
            await this.closeInbound(h, 'expired', 'The offer lapsed before anyone accepted it');
          }
        }
        await this.d.repo.forgetNonces(new Date(Date.now() - 60_000).toISOString());
        let delivered = 0;
        for (;;) {
          const batch = await this.d.repo.claimDue(10, 60);
          if (!batch.length) break;
          // One event per handoff in a batch (claimDue), so they may go at once: a slow partner holds up a batch
          // for one timeout, not one timeout per event.
          delivered += (await Promise.all(batch.map((row) => this.deliver(row).catch(() => false)))).filter(Boolean).length;
        }
        return delivered;
      })) ?? 0
    );
  }

  private async deliver(row: Awaited<ReturnType<ExchangeRepository['claimDue']>>[number]): Promise<boolean> {
    const partner = await this.d.repo.partner(row.partnerId);
    const key = await this.d.repo.signingKey(row.partnerId);
    const privateKey = key?.privateKeySealed ? this.d.box.open(key.privateKeySealed) : undefined;
    const theirKeys = (await this.d.repo.keys([row.partnerId])).filter((k) => k.side === 'theirs' && k.status === 'active');
    if (!partner || !key || !privateKey) {
      await this.d.repo.markRetry(row.id, 'no signing key', MAX_DELAY_MS, false);
      return false;
    }
    const result = await sendEvent({ baseUrl: partner.baseUrl, keyId: key.keyId, privateKey, theirKeys, event: row.event });
    if (result.ok) {
      await this.d.repo.markSent(row.id);
      if (row.event.kind === 'offer' && typeof result.data?.reference === 'string') {
        const h = await this.d.repo.handoff(row.handoffId, 'outbound');
        if (h && !h.remoteReference) await this.d.repo.transition(this.d.db, h.id, ['offered', 'accepted'], { remoteReference: result.data.reference });
      }
      return true;
    }
    const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(row.attempts, 20));
    const giveUp = !result.retry || row.attempts + 1 >= MAX_ATTEMPTS;
    this.d.logger.warn({ partnerId: partner.id, handoffId: row.handoffId, seq: row.seq, status: result.status, error: result.error, giveUp }, 'exchange call failed');
    await this.d.repo.markRetry(row.id, result.error ?? 'failed', delay, giveUp);
    // An offer the partner refused for good comes straight back rather than waiting for its timeout.
    if (giveUp && row.event.kind === 'offer') {
      const h = await this.d.repo.handoff(row.handoffId, 'outbound');
      if (h) await this.returnWork(h, 'declined', `${partner.name} could not take this (${result.error ?? 'refused'})`, result.error ?? 'refused');
    }
    return false;
  }
}

function invalid(field: string, message: string): AppError {
  return new AppError('INVALID_PAYLOAD', message, { issues: [{ path: [field], message }] });
}

