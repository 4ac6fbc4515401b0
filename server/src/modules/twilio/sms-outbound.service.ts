import type { MessageDelivery } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { Logger } from '../../lib/logger.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import { assertStaffCanAct } from '../conversations/conversation.access.js';
import { toDelivery } from '../conversations/conversation.mapper.js';
import type { ConversationRepository, ConversationView } from '../conversations/conversation.repository.js';
import type { MessageRepository, MessageRow } from '../messages/message.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { TwilioClients } from './twilio-client.js';
import type { TwilioSettingsService } from './twilio-settings.service.js';

/** Twilio's limit on one message's body (it splits longer ones into segments up to this). */
export const MAX_SMS_CHARS = 1600;
/** A send taken by a node that then went quiet for this long is taken again by the sweeper. */
const STALLED_MS = 60_000;

type TwilioStatus = 'queued' | 'sent' | 'delivered' | 'undelivered' | 'failed';
const TWILIO_STATUSES: readonly string[] = ['queued', 'sent', 'delivered', 'undelivered', 'failed'];

export interface SmsOutboundDeps {
  settings: Pick<TwilioSettingsService, 'byAgency'>;
  clients: TwilioClients;
  messages: MessageRepository;
  conversations: Pick<ConversationRepository, 'findView'>;
  constituents: Pick<ConstituentRepository, 'identityById' | 'setOptedOut' | 'smsIdentity'>;
  notifier: Notifier;
  logger: Logger;
  now?: () => Date;
}

/**
 * Texts the agency sends: agents' public replies on SMS conversations (and web chats continued by text).
 * The message is stored first (pending) and acknowledged; it is then handed to Twilio once, by one node. A
 * failure never loses it: it stays on the timeline as failed, with Twilio's error code, and can be retried.
 */
export class SmsOutboundService {
  constructor(private readonly d: SmsOutboundDeps) {}

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  /** The identity a conversation's public messages go to by text, or null when it does not text. */
  textIdentityOf(conv: Pick<ConversationView, 'channel' | 'channelIdentityId' | 'textIdentityId'>): string | null {
    return conv.channel === 'sms' ? conv.channelIdentityId : conv.textIdentityId;
  }

  /**
   * Whether a public message on this conversation also goes out by text: 'pending' if so, null if the
   * conversation does not text. Refuses, before anything is stored, a text that could never go out (the number
   * replied STOP; too long). The conversation view already carries the number and its consent: no query here.
   */
  planText(conv: Pick<ConversationView, 'textsTo' | 'textOptedOut'>, body: string): 'pending' | null {
    if (!conv.textsTo) return null;
    if (conv.textOptedOut) {
      throw new AppError('CONFLICT', 'This number has opted out of texts (they replied STOP). They can text START to receive texts again.');
    }
    if (body.length > MAX_SMS_CHARS) {
      const message = `Texts can be up to ${MAX_SMS_CHARS} characters`;
      throw new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['body'], message }] });
    }
    return 'pending';
  }

  /** For what the agency tells a constituent: texted when the conversation texts and the number consents. */
  deliveryFor(conv: Pick<ConversationView, 'textsTo' | 'textOptedOut'>): 'pending' | null {
    return conv.textsTo && !conv.textOptedOut ? 'pending' : null;
  }

  /** Hands a stored text to Twilio. Safe to call from several nodes: one takes it, the rest do nothing. */
  async deliver(messageId: string, retry = false): Promise<void> {
    const row = await this.d.messages.takeForDelivery(messageId, new Date(this.now().getTime() - STALLED_MS), retry);
    if (!row) return;
    const conv = await this.d.conversations.findView(row.conversationId);
    const identityId = conv ? this.textIdentityOf(conv) : null;
    const identity = identityId ? await this.d.constituents.identityById(identityId) : undefined;
    if (!conv || !identity) return this.fail(row, conv, 'NO_NUMBER', 'This conversation has no phone number to text');
    if (identity.optedOut) return this.fail(row, conv, 'OPTED_OUT', 'The number opted out of texts (STOP)');
    const account = await this.d.settings.byAgency(conv.agencyId);
    if (!account) return this.fail(row, conv, 'NOT_CONFIGURED', 'Texting is not set up for this agency (Phone settings)');
    try {
      const sent = await this.d.clients.forAgency(account).messages.create({
        to: identity.address,
        from: account.fromNumber,
        body: row.body,
        statusCallback: `${account.publicBaseUrl}/webhooks/twilio/sms/status`,
      });
      const status = sent.status === 'sent' || sent.status === 'delivered' ? sent.status : 'queued';
      const updated = await this.d.messages.markHandedOver(row.id, sent.sid, status);
      if (updated) this.announce(updated, conv);
    } catch (err) {
      const e = err as { code?: number | string; message?: string; status?: number };
      // A Twilio answer carries its error code; no answer at all (timeout, refused) is a network failure.
      const code = e.code !== undefined && typeof e.status === 'number' ? String(e.code) : 'NETWORK';
      this.d.logger.warn({ messageId: row.id, code }, 'text not accepted by Twilio');
      // Twilio knows the number texted STOP (perhaps before we stored its texts): nothing more goes to it.
      if (code === '21610') await this.d.constituents.setOptedOut(identityId!, true);
      await this.fail(row, conv, code, code === 'NETWORK' ? 'Twilio could not be reached' : (e.message ?? 'Twilio refused the text'));
    }
  }

  /**
   * A text that belongs to no transcript (a portal sign-in code): sent at once, never stored. False when it
   * cannot go: texting not set up, the number opted out, or Twilio refused it.
   */
  async sendOneOff(agencyId: string, to: string, body: string): Promise<boolean> {
    const account = await this.d.settings.byAgency(agencyId);
    if (!account) return false;
    if ((await this.d.constituents.smsIdentity(agencyId, to))?.optedOut) return false;
    try {
      await this.d.clients.forAgency(account).messages.create({ to, from: account.fromNumber, body });
      return true;
    } catch (err) {
      this.d.logger.warn({ code: (err as { code?: unknown }).code ?? 'NETWORK' }, 'one-off text not accepted by Twilio');
      return false;
    }
  }

  /** Staff who may act on the conversation send a failed text again. */
  async retry(p: StaffPrincipal, messageId: string, visible: (id: string) => Promise<ConversationView>): Promise<MessageDelivery> {
    const row = await this.d.messages.findById(messageId);
    if (!row || row.visibility !== 'public') throw new AppError('NOT_FOUND', 'Message not found');
    const conv = await visible(row.conversationId);
    assertStaffCanAct(p, conv);
    if (row.deliveryStatus !== 'failed' && row.deliveryStatus !== 'undelivered') {
      throw new AppError('CONFLICT', row.deliveryStatus ? 'This text has not failed' : 'This message is not a text');
    }
    const identityId = this.textIdentityOf(conv);
    const identity = identityId ? await this.d.constituents.identityById(identityId) : undefined;
    if (identity?.optedOut) {
      throw new AppError('CONFLICT', 'This number has opted out of texts (they replied STOP). They can text START to receive texts again.');
    }
    await this.deliver(row.id, true);
    const after = await this.d.messages.findById(row.id);
    return toDelivery(after!)!;
  }

  /** Twilio's status callback for a text we sent. Repeats and late arrivals change nothing. */
  async statusChanged(agencyId: string, params: { MessageSid?: string; MessageStatus?: string; ErrorCode?: string }): Promise<boolean> {
    const status = params.MessageStatus ?? '';
    if (!params.MessageSid || !TWILIO_STATUSES.includes(status)) return false;
    const failed = status === 'failed' || status === 'undelivered';
    const code = failed ? (params.ErrorCode || null) : null;
    const row = await this.d.messages.applyStatus(params.MessageSid, status as TwilioStatus, code, failed ? describeError(code) : null);
    if (!row) return false;
    const conv = await this.d.conversations.findView(row.conversationId);
    // A callback for another agency's message (its numbers moved) must not touch this one's.
    if (!conv || conv.agencyId !== agencyId) return false;
    this.announce(row, conv);
    return true;
  }

  /** Sends what a stopped node left pending or mid-send. Run by the case timers on one node. */
  async sweep(): Promise<number> {
    const ids = await this.d.messages.listUndelivered(new Date(this.now().getTime() - STALLED_MS));
    for (const id of ids) await this.deliver(id);
    return ids.length;
  }

  private async fail(row: MessageRow, conv: ConversationView | undefined, code: string, error: string): Promise<void> {
    const updated = await this.d.messages.markFailed(row.id, code, error);
    if (updated && conv) this.announce(updated, conv);
  }

  private announce(row: MessageRow, conv: ConversationView): void {
    const delivery = toDelivery(row);
    if (delivery) this.d.notifier.messageDelivery(conv, { conversationId: conv.id, messageId: row.id, delivery, attempt: row.deliveryAttempts });
  }
}

/** Plain words for the carrier errors agents meet most; the code is always shown too. */
function describeError(code: string | null): string {
  const known: Record<string, string> = {
    '30003': 'The phone is unreachable or switched off',
    '30004': 'The number is blocked from receiving this text',
    '30005': 'The number does not exist',
    '30006': 'The number cannot receive texts (landline or unreachable carrier)',
    '30007': 'The carrier filtered the text',
    '30008': 'Unknown carrier error',
    '21610': 'The number opted out of texts (STOP)',
  };
  return (code && known[code]) || 'The text was not delivered';
}
