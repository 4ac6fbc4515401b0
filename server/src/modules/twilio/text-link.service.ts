import type { ContinueByTextInput, ContinueByTextResult } from '@casebridge/shared';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { CaseRepository } from '../cases/case.repository.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import { toMessage, toSummary } from '../conversations/conversation.mapper.js';
import type { ConversationRepository, ConversationView } from '../conversations/conversation.repository.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { MessageRepository } from '../messages/message.repository.js';
import type { ConstituentPrincipal } from '../principal.js';
import type { SmsOutboundService } from './sms-outbound.service.js';
import type { TwilioSettingsService } from './twilio-settings.service.js';
import { constituentText } from '../constituent-text.js';

export interface TextLinkDeps {
  db: Db;
  conversations: ConversationService;
  conversationRows: ConversationRepository;
  constituents: ConstituentRepository;
  messages: MessageRepository;
  cases: CaseRepository;
  settings: Pick<TwilioSettingsService, 'byAgency'>;
  outbound: SmsOutboundService;
  audit: AuditRepository;
  notifier: Notifier;
}

/**
 * "Continue by text": a constituent chatting on the web gives a mobile number; the agency's public replies then
 * also go to that number, texts from it join the same conversation, and they keep their place in the queue and
 * their case. While they wait, they are texted when an agent picks the conversation up.
 */
export class TextLinkService {
  constructor(private readonly d: TextLinkDeps) {}

  async continueByText(p: ConstituentPrincipal, conversationId: string, input: ContinueByTextInput): Promise<ContinueByTextResult> {
    const conv = await this.d.conversations.get(p, conversationId);
    if (conv.status === 'ended') throw new AppError('CONFLICT', 'This chat has ended');
    if (conv.channel !== 'web') throw new AppError('CONFLICT', 'This conversation already continues by text');
    const account = await this.d.settings.byAgency(conv.agencyId);
    if (!account) throw new AppError('UNAVAILABLE', 'Texting is not available for this agency', { retryable: false });
    if (account.fromNumber === input.phone) {
      const message = 'Enter your own mobile number';
      throw new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['phone'], message }] });
    }
    const existing = await this.d.constituents.smsIdentity(conv.agencyId, input.phone);
    if (existing?.optedOut) {
      throw new AppError('CONFLICT', `This number has opted out of our texts. Text START to ${account.fromNumber} first, then try again.`);
    }
    if (existing && conv.textIdentityId === existing.id) return { phone: input.phone };
    const identityId = await this.d.db.transaction((tx) =>
      this.d.constituents.ensureIdentity(tx, { agencyId: conv.agencyId, constituentId: conv.constituentId, channel: 'sms', address: input.phone }),
    );
    await this.d.conversationRows.setTextIdentity(conv.id, identityId);
    await this.d.cases.addEvent(this.d.db, {
      caseId: conv.caseId,
      kind: 'conversation.text_linked',
      actorKind: 'constituent',
      conversationId: conv.id,
      data: { number: input.phone },
    });
    await this.d.audit.record({
      agencyId: conv.agencyId,
      actorKind: 'constituent',
      actorId: p.constituentId,
      action: 'conversation.continue_by_text',
      objectType: 'conversation',
      objectId: conv.id,
      outcome: 'success',
    });
    const view = (await this.d.conversationRows.findView(conv.id))!;
    this.d.notifier.conversationUpdated(toSummary(view));
    await this.text(
      view,
      view.status === 'queued'
        ? `You will get a text at this number when an agent is ready for you. Replies to this chat also come here, and you can answer by text.`
        : `Replies to your chat will also come to this number by text, and you can answer by text.`,
    );
    return { phone: input.phone };
  }

  /** An agent picked up a conversation that waits by text: tell the constituent it is their turn. */
  async agentReady(conversationId: string, agentName: string): Promise<void> {
    const view = await this.d.conversationRows.findView(conversationId);
    if (!view || view.channel !== 'web' || !view.textIdentityId) return;
    await this.text(view, constituentText(view.language).agentReadyByText(agentName));
  }

  /** A public message from the agency, on the timeline and by text. */
  private async text(view: ConversationView, body: string): Promise<void> {
    const delivery = this.d.outbound.deliveryFor(view);
    const { message, created } = await this.d.messages.append({
      conversationId: view.id,
      clientMessageId: null,
      authorKind: 'system',
      visibility: 'public',
      body,
      channel: view.channel,
      deliveryStatus: delivery,
    });
    if (!created) return;
    this.d.notifier.messageCreated(toMessage(message), view);
    if (delivery) await this.d.outbound.deliver(message.id);
  }
}
