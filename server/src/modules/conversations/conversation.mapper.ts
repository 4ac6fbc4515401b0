import type { AttachmentRef, ConstituentConversation, ConversationSummary, Message, MessageDelivery } from '@casebridge/shared';
import { toIso } from '../../lib/time.js';
import type { MessageRow } from '../messages/message.repository.js';
import type { ConversationView } from './conversation.repository.js';

export function toSummary(c: ConversationView): ConversationSummary {
  return {
    id: c.id,
    agencyId: c.agencyId,
    caseId: c.caseId,
    caseReference: c.caseReference,
    constituentId: c.constituentId,
    constituentName: c.constituentName ?? 'Visitor',
    channel: c.channel,
    status: c.status,
    groupId: c.groupId,
    groupName: c.groupName,
    assigneeId: c.assigneeId,
    assigneeName: c.assigneeName,
    language: c.language,
    lastSeq: c.lastSeq,
    version: c.version,
    caseStatus: c.caseStatus,
    priority: c.casePriority,
    tags: c.caseTags,
    caseTypeId: c.caseTypeId,
    constituentEmail: c.constituentEmail,
    constituentPhone: c.constituentPhone,
    textsTo: c.textsTo,
    textOptedOut: Boolean(c.textOptedOut),
    preview: c.preview,
    offline: c.offline,
    createdAt: toIso(c.createdAt),
    updatedAt: toIso(c.updatedAt),
  };
}

export function toConstituentView(c: ConversationView): ConstituentConversation {
  return {
    id: c.id,
    caseReference: c.caseReference,
    status: c.status,
    lastSeq: c.lastSeq,
    createdAt: toIso(c.createdAt),
  };
}

export function toMessage(m: MessageRow, attachments: AttachmentRef[] = []): Message {
  const author: Message['author'] =
    m.authorKind === 'agent' && m.authorUserId
      ? { kind: 'agent', userId: m.authorUserId, displayName: m.authorName ?? 'Agent' }
      : m.authorKind === 'constituent' && m.authorConstituentId
        ? { kind: 'constituent', constituentId: m.authorConstituentId }
        : { kind: 'system' };
  return {
    id: m.id,
    conversationId: m.conversationId,
    seq: m.seq,
    clientMessageId: m.clientMessageId,
    author,
    visibility: m.visibility,
    body: m.body,
    attachments,
    channel: m.channel,
    delivery: toDelivery(m),
    ...(m.meta ? { meta: m.meta } : {}),
    createdAt: toIso(m.createdAt),
  };
}

export function toDelivery(m: Pick<MessageRow, 'deliveryStatus' | 'deliveryErrorCode' | 'deliveryError'>): MessageDelivery | null {
  return m.deliveryStatus ? { status: m.deliveryStatus, errorCode: m.deliveryErrorCode, error: m.deliveryError } : null;
}
