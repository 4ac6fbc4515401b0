import type { Masker } from '../messages/message.service.js';
import type { Db } from '../../db/client.js';
import { pgErrorCode } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { AttachmentRepository } from '../attachments/attachment.repository.js';
import { safeFilename, sniffContentType } from '../attachments/sniff.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { CaseRepository, CaseRow } from '../cases/case.repository.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import { toMessage, toSummary } from '../conversations/conversation.mapper.js';
import type { ConversationRepository } from '../conversations/conversation.repository.js';
import type { ConversationDeps } from '../conversations/conversation.service.js';
import type { MessageRepository } from '../messages/message.repository.js';
import type { QueueService } from '../queue/queue.service.js';
import type { FetchedMedia } from './twilio-client.js';

/** Carrier keywords (the whole text, any case): Twilio's standard opt-out, opt-in and help words. */
const STOP_WORDS = new Set(['stop', 'stopall', 'unsubscribe', 'cancel', 'end', 'quit', 'revoke', 'optout']);
const START_WORDS = new Set(['start', 'yes', 'unstop']);
const HELP_WORDS = new Set(['help', 'info']);

export type Keyword = 'stop' | 'start' | 'help';
export function keywordOf(body: string): Keyword | null {
  const word = body.trim().toLowerCase().replace(/[.!]+$/, '');
  if (STOP_WORDS.has(word)) return 'stop';
  if (START_WORDS.has(word)) return 'start';
  if (HELP_WORDS.has(word)) return 'help';
  return null;
}

export interface InboundSms {
  from: string;
  body: string;
  messageSid: string;
  media: FetchedMedia[];
}

export interface SmsInboundDeps extends Pick<ConversationDeps, 'decideRoute' | 'caseStarted' | 'routing' | 'constituentReplied' | 'now'> {
  db: Db;
  /** Masks sensitive numbers in texts before they are stored (issue #11). */
  sensitive?: Masker;
  agencies: AgencyRepository;
  constituents: ConstituentRepository;
  conversations: ConversationRepository;
  messages: MessageRepository;
  cases: CaseRepository;
  attachments: Pick<AttachmentRepository, 'create' | 'refsByMessage'>;
  audit: AuditRepository;
  notifier: Notifier;
  queue: QueueService;
  /** Tells staff the case's timeline grew (bound late to the case service). */
  caseChanged: (kase: CaseRow) => void;
}

/**
 * Texts from constituents' phones. A text joins the number's open conversation (an SMS thread, or a web chat
 * the constituent asked to continue by text) or starts one with a case, routed like chat. Idempotent on
 * Twilio's MessageSid, which is what its retries repeat. STOP, START and HELP are honoured and recorded.
 */
export class SmsInboundService {
  constructor(private readonly d: SmsInboundDeps) {}

  /** True if this MessageSid was already stored: a retry, answered without fetching its media again. */
  async seen(messageSid: string): Promise<boolean> {
    return Boolean(await this.d.messages.findByExternalId(messageSid));
  }

  async receive(agencyId: string, sms: InboundSms): Promise<{ conversationId: string | null; duplicate: boolean; keyword: Keyword | null }> {
    const keyword = sms.media.length ? null : keywordOf(sms.body);
    if (keyword === 'stop' || keyword === 'start') {
      // The number's consent changes whether or not a conversation is open; a retry changes nothing twice.
      const out = await this.store(agencyId, sms, { startIfNone: false });
      const identity = await this.d.constituents.smsIdentity(agencyId, sms.from);
      if (identity && (await this.d.constituents.setOptedOut(identity.id, keyword === 'stop'))) {
        await this.d.audit.record({
          agencyId,
          actorKind: 'constituent',
          actorId: identity.constituentId,
          action: keyword === 'stop' ? 'sms.opted_out' : 'sms.opted_in',
          objectType: 'channel_identity',
          objectId: identity.id,
          outcome: 'success',
        });
        if (out.caseId) {
          await this.d.cases.addEvent(this.d.db, {
            caseId: out.caseId,
            kind: keyword === 'stop' ? 'sms.opted_out' : 'sms.opted_in',
            actorKind: 'constituent',
            conversationId: out.conversationId,
            data: { number: sms.from },
          });
          const kase = await this.d.cases.findById(out.caseId);
          if (kase) this.d.caseChanged(kase);
        }
      }
      return { conversationId: out.conversationId, duplicate: out.duplicate, keyword };
    }
    // HELP is answered by the webhook; it is also a message when a conversation is open, so the agent sees it.
    const out = await this.store(agencyId, sms, { startIfNone: keyword !== 'help' });
    return { conversationId: out.conversationId, duplicate: out.duplicate, keyword };
  }

  private async store(agencyId: string, sms: InboundSms, opts: { startIfNone: boolean }) {
    const agency = await this.d.agencies.findById(agencyId);
    if (!agency) throw new AppError('NOT_FOUND', 'Agency not found');
    // Decided before the transaction: its reads must not wait on it (PGlite has one connection).
    const known = await this.d.constituents.findByPhone(agencyId, sms.from);
    const route = opts.startIfNone
      ? await this.d.decideRoute(
          agencyId,
          {
            serviceId: null,
            caseTypeId: null,
            channel: 'sms',
            language: 'en',
            priority: 'normal',
            returning: known ? () => this.d.cases.hasCases(agencyId, known) : false,
          },
          (await this.d.agencies.defaultGroupId(agencyId)) ?? null,
        )
      : null;
    // Masked before the transaction: the agency's patterns are read outside it (PGlite has one connection).
    const masked = this.d.sensitive && sms.body ? await this.d.sensitive.mask(agencyId, sms.body) : undefined;
    // Most texts join an open thread; a number is taken only for one that will start a case.
    const year = (this.d.now?.() ?? new Date()).getUTCFullYear();
    const reserved = route?.groupId && !(await this.d.conversations.hasOpenForAddress(agencyId, 'sms', sms.from))
      ? await this.d.cases.reserveReference(agencyId, agency.casePrefix, year)
      : undefined;
    const attempt = () =>
      this.d.db.transaction(async (tx) => {
        let constituentId = await this.d.constituents.findOrCreate(tx, agencyId, { name: sms.from, phone: sms.from, language: 'en' });
        const identityId = await this.d.constituents.ensureIdentity(tx, { agencyId, constituentId, channel: 'sms', address: sms.from });
        let conv = await this.d.conversations.findOpenByIdentity(tx, identityId);
        // A web chat continued by text: the reply joins it, written by the person who chatted.
        if (!conv) {
          conv = await this.d.conversations.findOpenByTextIdentity(tx, identityId);
          if (conv) constituentId = conv.constituentId;
        }
        let created = false;
        if (!conv) {
          if (!route) return { conversationId: null, caseId: null, created: false, message: null, duplicate: false };
          if (!route.groupId) throw new AppError('UNAVAILABLE', 'This agency is not taking messages yet', { retryable: false });
          const reference = reserved ?? (await this.d.cases.nextReference(tx, agencyId, agency.casePrefix, year));
          const kase = await this.d.cases.create(tx, {
            agencyId,
            reference,
            title: 'Text message',
            constituentId,
            groupId: route.groupId,
            priority: route.priority,
          });
          await this.d.caseStarted(tx, kase);
          conv = await this.d.conversations.create(tx, {
            agencyId,
            constituentId,
            channelIdentityId: identityId,
            channel: 'sms',
            groupId: route.groupId,
            caseId: kase.id,
            language: 'en',
          });
          await this.d.cases.addEvent(tx, {
            caseId: kase.id,
            kind: 'conversation.started',
            actorKind: 'constituent',
            conversationId: conv.id,
            data: { channel: 'sms', routing: route.explanation },
          });
          created = true;
        }
        const appended = await this.d.messages.append(
          {
            conversationId: conv.id,
            clientMessageId: null,
            externalId: sms.messageSid,
            authorKind: 'constituent',
            authorConstituentId: constituentId,
            visibility: 'public',
            body: masked?.text ?? sms.body,
            channel: 'sms',
            ...(masked?.kinds.length ? { meta: { masked: masked.kinds } } : {}),
          },
          tx,
        );
        // Pictures join their message in the same commit, and only the first delivery of a MessageSid keeps them.
        if (appended.created) {
          for (const [i, m] of sms.media.entries()) {
            await this.d.attachments.create(
              {
                conversationId: conv.id,
                uploaderKind: 'constituent',
                uploaderId: constituentId,
                filename: safeFilename(`picture-${i + 1}`, m.contentType as Parameters<typeof safeFilename>[1]),
                contentType: m.contentType,
                data: m.bytes,
                messageId: appended.message.id,
              },
              tx,
            );
          }
        }
        return { conversationId: conv.id, caseId: conv.caseId, created, message: appended.message, duplicate: !appended.created };
      });
    let out;
    try {
      out = await attempt();
    } catch (err) {
      // Two deliveries raced to open the conversation (or to store the same MessageSid): the unique indexes let
      // one win; the other now finds what it made.
      if (pgErrorCode(err) !== '23505') throw err;
      out = await attempt();
    }
    if (!out.conversationId || !out.message) return { conversationId: null, caseId: null, duplicate: out.duplicate };
    const view = (await this.d.conversations.findView(out.conversationId))!;
    if (out.created) {
      this.d.notifier.conversationCreated(toSummary(view));
      await this.d.queue.announce(view.groupId).catch(() => undefined);
      this.d.routing?.queueChanged(view.groupId);
    }
    if (!out.duplicate) {
      const refs = await this.d.attachments.refsByMessage([out.message.id]);
      this.d.notifier.messageCreated(toMessage(out.message, refs.get(out.message.id)), view);
      if (view.caseStatus === 'awaiting_info' || view.caseStatus === 'resolved') await this.d.constituentReplied?.(view.caseId);
    }
    return { conversationId: out.conversationId, caseId: out.caseId, duplicate: out.duplicate };
  }
}

/** Checks media Twilio delivered against what an attachment may be (the bytes decide, as for uploads). */
export function acceptableMedia(m: FetchedMedia): FetchedMedia | null {
  const sniffed = sniffContentType(m.bytes);
  return sniffed ? { bytes: m.bytes, contentType: sniffed } : null;
}
