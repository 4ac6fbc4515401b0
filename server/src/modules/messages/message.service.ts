import type { Message, SendMessageResult, SensitiveKind, SyncResult, Visibility } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { Limiter } from '../../lib/rate-limit.js';
import type { Notifier } from '../../realtime/notifier.js';
import { assertStaffCanAct } from '../conversations/conversation.access.js';
import { toMessage } from '../conversations/conversation.mapper.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { Principal } from '../principal.js';
import type { MessageRepository } from './message.repository.js';
import type { AttachmentService } from '../attachments/attachment.service.js';
import type { AttachmentRepository } from '../attachments/attachment.repository.js';
import type { UserRepository } from '../users/user.repository.js';
import type { ConversationView } from '../conversations/conversation.repository.js';

export interface MessageDeps {
  conversations: ConversationService;
  messages: MessageRepository;
  attachments: AttachmentService;
  attachmentRefs: Pick<AttachmentRepository, 'refsByMessage'>;
  notifier: Notifier;
  staff: Pick<UserRepository, 'listStaff'>;
  /** A constituent's reply moves a case that was waiting for them back to open. */
  constituentReplied: (caseId: string) => Promise<void>;
  /** An agent's public reply: the case's first-response clock stops. */
  agentReplied: (caseId: string) => Promise<void>;
  messagesPerSession: Limiter;
  /** Public replies on conversations that text (SMS, or a web chat continued by text) also go out by text. */
  texts?: TextSender;
  /** Masks SSNs, cards and the agency's patterns in constituents' messages before they are stored. */
  sensitive?: Masker;
  /** Service Exchange (#10): a stored message of a conversation handed to a partner agency crosses over. Never throws. */
  relay?: { messageCreated(message: Message, conv: ConversationView): void };
}

export interface Masker {
  mask(agencyId: string, text: string): Promise<{ text: string; kinds: SensitiveKind[] }>;
}

export interface TextSender {
  /** 'pending' when this public reply also goes out by text; throws when it could never go out (STOP; too long). */
  planText(conv: ConversationView, body: string): 'pending' | null;
  /** 'pending' when the agency's notices on this conversation go out by text. */
  deliveryFor(conv: ConversationView): 'pending' | null;
  /** Hands a stored message to Twilio, after the commit. */
  deliver(messageId: string): Promise<void>;
}

export interface SendInput {
  conversationId: string;
  clientMessageId: string;
  body: string;
  visibility: Visibility;
  attachmentIds?: string[];
}

/** Sending and catching up. Delivery rule: commit first, then acknowledge, then broadcast. */
export class MessageService {
  constructor(private readonly d: MessageDeps) {}

  /** `socketId`: the socket it came on, if any; it learns the message from the acknowledgement, not a broadcast. */
  async send(p: Principal, input: SendInput, socketId?: string): Promise<SendMessageResult> {
    const conv = await this.d.conversations.get(p, input.conversationId);
    if (p.kind === 'constituent') {
      if (input.visibility === 'internal') throw new AppError('FORBIDDEN', 'Constituents cannot write internal notes');
      await this.d.messagesPerSession.consume(
        p.widgetSessionId,
        'You are sending messages very quickly. Please wait a moment before sending more.',
      );
    } else {
      assertStaffCanAct(p, conv);
      // Nothing typed reaches a caller: a call carries internal notes only.
      if (conv.channel === 'voice' && input.visibility === 'public') {
        throw new AppError('CONFLICT', 'Calls take internal notes only: the caller cannot read replies. Add an internal note, or reach them another way from the case.');
      }
      // The constituent hears from the agent handling the conversation, or a supervisor who stepped in; other
      // colleagues add internal notes.
      if (input.visibility === 'public' && conv.assigneeId !== p.userId && p.role !== 'supervisor') {
        throw new AppError('FORBIDDEN', conv.assigneeId ? 'A colleague is handling this conversation: add an internal note instead' : 'Take this conversation to reply');
      }
    }
    // Notes may still be added to an ended conversation (wrap-up); public replies may not.
    if (conv.status === 'ended' && input.visibility === 'public') {
      throw new AppError('CONFLICT', 'This conversation has ended');
    }
    const texted = p.kind === 'staff' && input.visibility === 'public' ? (this.d.texts?.planText(conv, input.body) ?? null) : null;
    const attachmentIds = [...new Set(input.attachmentIds ?? [])];
    await this.d.attachments.assertSendable(p, conv.id, attachmentIds).catch(async (err) => {
      // A retry of a message that already took its files is fine: the duplicate check below answers it.
      if (attachmentIds.length && (await this.d.messages.findByClientId(conv.id, input.clientMessageId))) return;
      throw err;
    });
    // What a constituent writes is masked before it is stored: nobody (not even they) sees the number again.
    const masked = p.kind === 'constituent' && this.d.sensitive ? await this.d.sensitive.mask(conv.agencyId, input.body) : undefined;
    const { message: row, created } = await this.d.messages.append({
      conversationId: conv.id,
      clientMessageId: input.clientMessageId,
      authorKind: p.kind === 'staff' ? 'agent' : 'constituent',
      authorUserId: p.kind === 'staff' ? p.userId : null,
      authorConstituentId: p.kind === 'constituent' ? p.constituentId : null,
      authorName: p.kind === 'staff' ? p.displayName : null,
      visibility: input.visibility,
      body: masked?.text ?? input.body,
      channel: conv.channel,
      deliveryStatus: texted,
      ...(masked?.kinds.length ? { meta: { masked: masked.kinds } } : {}),
    }, undefined, attachmentIds);
    // A new message without files has none to look up (the common case: one query less per message).
    const refs = created && !attachmentIds.length ? new Map() : await this.d.attachmentRefs.refsByMessage([row.id]);
    const message = toMessage(row, refs.get(row.id));
    // A retry returns the stored message and broadcasts nothing: receivers saw it the first time.
    if (created) {
      this.d.notifier.messageCreated(message, conv, undefined, socketId);
      this.d.relay?.messageCreated(message, conv);
      if (texted) void this.d.texts!.deliver(message.id).catch(() => undefined);
      // The case status came with the conversation: only a case waiting for the constituent costs a write.
      if (p.kind === 'constituent' && (conv.caseStatus === 'awaiting_info' || conv.caseStatus === 'resolved')) {
        await this.d.constituentReplied(conv.caseId).catch(() => undefined);
      }
      if (p.kind === 'staff' && message.visibility === 'public') await this.d.agentReplied(conv.caseId).catch(() => undefined);
      if (p.kind === 'staff' && message.visibility === 'internal') {
        void this.notifyMentions(p.userId, p.displayName, conv, message.body);
        // A supervisor's note on a colleague's conversation is a whisper: the agent hears it, the constituent never.
        if (p.role === 'supervisor' && conv.assigneeId && conv.assigneeId !== p.userId) {
          this.d.notifier.mentioned([conv.assigneeId], {
            conversationId: conv.id,
            caseReference: conv.caseReference,
            byName: p.displayName,
            preview: message.body.slice(0, 140),
            whisper: true,
          });
        }
      }
    }
    return { message, created };
  }

  /**
   * `@Display Name` in an internal note tells that colleague, if they may see the conversation. A courtesy:
   * failing to notify never fails the note.
   */
  private async notifyMentions(authorId: string, authorName: string, conv: ConversationView, body: string): Promise<void> {
    if (!body.includes('@')) return;
    try {
      const text = body.toLowerCase();
      const staff = await this.d.staff.listStaff(conv.agencyId);
      const ids = staff
        .filter((u) => u.id !== authorId && text.includes(`@${u.displayName.toLowerCase()}`))
        .filter((u) => u.role === 'admin' || (u.role === 'supervisor' && u.allGroups) || u.groupIds.includes(conv.groupId) || u.id === conv.assigneeId)
        .map((u) => u.id);
      this.d.notifier.mentioned(ids, {
        conversationId: conv.id,
        caseReference: conv.caseReference,
        byName: authorName,
        preview: body.slice(0, 140),
      });
    } catch {
      // best effort
    }
  }

  /** Everything after `afterSeq`, in order. Constituents get public messages only. */
  async sync(p: Principal, conversationId: string, afterSeq: number, limit: number): Promise<SyncResult> {
    const conv = await this.d.conversations.get(p, conversationId);
    const rows = await this.d.messages.listAfter(conv.id, afterSeq, limit + 1, p.kind === 'constituent');
    const page = rows.slice(0, limit);
    const refs = await this.d.attachmentRefs.refsByMessage(page.map((m) => m.id));
    const messages: Message[] = page.map((m) => toMessage(m, refs.get(m.id)));
    return {
      messages,
      hasMore: rows.length > limit,
      lastSeq: page.length ? page[page.length - 1]!.seq : afterSeq,
    };
  }

  async typing(p: Principal, conversationId: string, isTyping: boolean, socketId?: string): Promise<void> {
    const conv = await this.d.conversations.get(p, conversationId);
    if (p.kind === 'staff') assertStaffCanAct(p, conv);
    this.d.notifier.typing(conv, p.kind === 'staff' ? 'agent' : 'constituent', isTyping, socketId);
  }
}
