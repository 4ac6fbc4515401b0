import { z } from 'zod';
import { ATTACHMENT_TYPES, MAX_ATTACHMENTS_PER_MESSAGE, MAX_MESSAGE_LENGTH, MAX_SYNC_PAGE } from './constants.js';

/** Every id CaseBridge hands out is a random UUID: guessing one is hopeless (RELIABILITY.md C4). */
export const Id = z.uuid();

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Shaped like a uuid: safe to bind as `uuid` in SQL (a malformed one would fail the whole statement). */
export const isUuid = (s: string): boolean => UUID_TEXT.test(s);

/** Where an interaction came from. */
export const Channel = z.enum(['web', 'sms', 'voice', 'email', 'portal']);
export type Channel = z.infer<typeof Channel>;

/** Staff roles: admins configure, supervisors oversee their groups, agents work conversations and cases; auditors only read (and export) the audit log and purge reports. */
export const Role = z.enum(['admin', 'supervisor', 'agent', 'auditor']);
export type Role = z.infer<typeof Role>;

/** `internal` notes are for staff only and must never reach a constituent. */
export const Visibility = z.enum(['public', 'internal']);
export type Visibility = z.infer<typeof Visibility>;

export const ConversationStatus = z.enum(['queued', 'active', 'ended']);
export type ConversationStatus = z.infer<typeof ConversationStatus>;

export const CaseStatus = z.enum(['new', 'open', 'awaiting_info', 'resolved', 'closed', 'cancelled']);
export type CaseStatus = z.infer<typeof CaseStatus>;

export const Priority = z.enum(['low', 'normal', 'high', 'urgent']);
export type Priority = z.infer<typeof Priority>;

export const Language = z.enum(['en', 'es']);
export type Language = z.infer<typeof Language>;


/** A message body: trimmed, not empty, at most MAX_MESSAGE_LENGTH characters, NUL bytes refused. */
export const MessageBody = z
  .string()
  .trim()
  .min(1, 'Message is empty')
  .max(MAX_MESSAGE_LENGTH, `Message is longer than ${MAX_MESSAGE_LENGTH} characters`)
  .refine((s) => !s.includes('\u0000'), 'Message contains a NUL character');

/** Who wrote a message, as every audience may see it. */
export const Author = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('agent'), userId: Id, displayName: z.string() }),
  z.object({ kind: z.literal('constituent'), constituentId: Id }),
  z.object({ kind: z.literal('system') }),
]);
export type Author = z.infer<typeof Author>;


/** A file attached to a message; download it from `/api/attachments/:id`. */
export const AttachmentRef = z.object({
  id: Id,
  filename: z.string(),
  contentType: z.enum(ATTACHMENT_TYPES),
  size: z.number().int().nonnegative(),
});
export type AttachmentRef = z.infer<typeof AttachmentRef>;

/** How a message the agency sent by text is doing; Twilio's error code when it failed. */
export const DeliveryStatus = z.enum(['pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed']);
export type DeliveryStatus = z.infer<typeof DeliveryStatus>;
export const MessageDelivery = z.object({
  status: DeliveryStatus,
  /** Twilio's error code (e.g. "30003"), or "NETWORK" when Twilio could not be reached. */
  errorCode: z.string().nullable(),
  error: z.string().nullable(),
});
export type MessageDelivery = z.infer<typeof MessageDelivery>;

/** What was masked in a constituent's message before it was stored (issue #11): SSNs, cards, agency patterns. */
export const SensitiveKind = z.enum(['ssn', 'card', 'custom']);
export type SensitiveKind = z.infer<typeof SensitiveKind>;
/** What kind of value a secure-field request asks for. */
export const SecureFieldKind = z.enum(['ssn', 'card', 'account', 'other']);
export type SecureFieldKind = z.infer<typeof SecureFieldKind>;
/** A message's extras: which sensitive kinds were masked, or a secure-field request and its answer (no value). */
export const MessageMeta = z.object({
  masked: z.array(SensitiveKind).optional(),
  secureField: z
    .object({ id: Id, label: z.string(), kind: SecureFieldKind, state: z.enum(['requested', 'provided']) })
    .optional(),
});
export type MessageMeta = z.infer<typeof MessageMeta>;

/** One entry of a conversation. */
export const Message = z.object({
  id: Id,
  conversationId: Id,
  /** Per-conversation, gap-free, commit-ordered cursor used to catch up after a reconnect. */
  seq: z.number().int().positive(),
  /** The sender's idempotency key; null for messages that came from elsewhere (SMS, system). */
  clientMessageId: z.string().nullable(),
  author: Author,
  visibility: Visibility,
  body: z.string(),
  attachments: z.array(AttachmentRef),
  channel: Channel,
  /** Set on messages that go out by text (staff see whether they arrived). */
  delivery: MessageDelivery.nullable(),
  /** Absent on ordinary messages. */
  meta: MessageMeta.optional(),
  createdAt: z.iso.datetime({ offset: true }),
});
export type Message = z.infer<typeof Message>;

/** A conversation as staff see it in lists. */
export const ConversationSummary = z.object({
  id: Id,
  agencyId: Id,
  caseId: Id,
  caseReference: z.string(),
  constituentId: Id,
  constituentName: z.string(),
  channel: Channel,
  status: ConversationStatus,
  groupId: Id,
  groupName: z.string(),
  assigneeId: Id.nullable(),
  assigneeName: z.string().nullable(),
  language: Language,
  lastSeq: z.number().int().nonnegative(),
  /** Bumped by every change of status or owner (under the row lock): the newer of two copies has the higher one. */
  version: z.number().int().nonnegative(),
  /** The case it belongs to, as the inbox shows it. */
  caseStatus: CaseStatus,
  priority: Priority,
  tags: z.array(z.string()),
  caseTypeId: Id.nullable(),
  constituentEmail: z.string().nullable(),
  constituentPhone: z.string().nullable(),
  /** Public replies also go by text to this number (an SMS thread, or a web chat continued by text). */
  textsTo: z.string().nullable(),
  /** That number replied STOP: nothing can be texted to it until it texts START. */
  textOptedOut: z.boolean(),
  /** The newest message (public or internal), shortened for the list. */
  preview: z.string().nullable(),
  /** Left while chat was closed or unstaffed. */
  offline: z.boolean(),
  createdAt: z.iso.datetime({ offset: true }),
  updatedAt: z.iso.datetime({ offset: true }),
});
export type ConversationSummary = z.infer<typeof ConversationSummary>;

/** What a constituent may know of their own conversation. */
export const ConstituentConversation = z.object({
  id: Id,
  caseReference: z.string(),
  status: ConversationStatus,
  lastSeq: z.number().int().nonnegative(),
  createdAt: z.iso.datetime({ offset: true }),
});
export type ConstituentConversation = z.infer<typeof ConstituentConversation>;

/** Client idempotency key: any UUID the sender picks for one message and reuses on every retry. */
export const ClientMessageId = z.uuid();

const sendFields = {
  clientMessageId: ClientMessageId,
  /** May be empty only when files are attached. */
  body: z
    .string()
    .trim()
    .max(MAX_MESSAGE_LENGTH, `Message is longer than ${MAX_MESSAGE_LENGTH} characters`)
    .refine((s) => !s.includes('\u0000'), 'Message contains a NUL character')
    .default(''),
  visibility: Visibility.default('public'),
  /** Files uploaded first with POST /api/conversations/:id/attachments. */
  attachmentIds: z.array(Id).max(MAX_ATTACHMENTS_PER_MESSAGE).default([]),
};
function bodyOrFiles(m: { body: string; attachmentIds: string[] }, ctx: z.RefinementCtx) {
  if (m.body.length === 0 && m.attachmentIds.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['body'], message: 'Message is empty' });
  }
}
/** A message to send, over a socket (names its conversation). */
export const SendMessageInput = z.strictObject({ conversationId: Id, ...sendFields }).superRefine(bodyOrFiles);
/** The same over HTTP, where the conversation is in the path. */
export const SendMessageBody = z.strictObject(sendFields).superRefine(bodyOrFiles);
export type SendMessageInput = z.input<typeof SendMessageInput>;

/** The result of a send: the stored message and whether this call created it (false on a retry). */
export const SendMessageResult = z.object({ message: Message, created: z.boolean() });
export type SendMessageResult = z.infer<typeof SendMessageResult>;


export const SyncInput = z.strictObject({
  conversationId: Id,
  afterSeq: z.number().int().nonnegative(),
  limit: z.number().int().min(1).max(MAX_SYNC_PAGE).default(MAX_SYNC_PAGE),
});
export type SyncInput = z.input<typeof SyncInput>;

/** A page of messages after a cursor; `hasMore` says ask again from the last seq. */
export const SyncResult = z.object({ messages: z.array(Message), hasMore: z.boolean(), lastSeq: z.number().int() });
export type SyncResult = z.infer<typeof SyncResult>;

export const TypingInput = z.strictObject({ conversationId: Id, isTyping: z.boolean() });
export type TypingInput = z.infer<typeof TypingInput>;

export const ConversationRef = z.strictObject({ conversationId: Id });
export type ConversationRef = z.infer<typeof ConversationRef>;

/** A side's delivery and read cursors: every message up to the seq has reached / been read by that side. */
export const ReceiptInput = z.strictObject({
  conversationId: Id,
  deliveredSeq: z.number().int().nonnegative().optional(),
  readSeq: z.number().int().nonnegative().optional(),
});
export type ReceiptInput = z.infer<typeof ReceiptInput>;

/** The constituent rates the help they got, once the conversation has ended. */
export const RatingInput = z.strictObject({
  score: z.number().int().min(1, 'Choose 1 to 5').max(5, 'Choose 1 to 5'),
  comment: z.string().trim().max(1000, 'Comment is longer than 1000 characters').optional(),
});
export type RatingInput = z.infer<typeof RatingInput>;

/** Send the transcript of an ended chat to this address. */
export const TranscriptEmailInput = z.strictObject({ email: z.email('Enter a valid email address').max(254) });
export type TranscriptEmailInput = z.infer<typeof TranscriptEmailInput>;

/** Whether live chat is staffed right now; when not, the widget takes a message that becomes a case. */
export const Availability = z.object({
  open: z.boolean(),
  reason: z.enum(['no_agents', 'closed']).nullable(),
  /** Whether the widget may offer to email the transcript. */
  emailTranscript: z.boolean(),
  /** Whether the widget may offer "continue by text" (the agency's texting is set up). */
  textMe: z.boolean(),
});
export type Availability = z.infer<typeof Availability>;

/** Weekly opening hours in the agency's time zone; days without an entry are closed. */
export const BusinessHours = z.object({
  timezone: z.string().min(1),
  days: z.partialRecord(
    z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
    z.array(z.tuple([z.string().regex(/^\d{2}:\d{2}$/), z.string().regex(/^\d{2}:\d{2}$/)])),
  ),
});
export type BusinessHours = z.infer<typeof BusinessHours>;

// ---- staff identity -------------------------------------------------------------------------------

export const Email = z.email().max(254).transform((s) => s.toLowerCase());

export const LoginInput = z.strictObject({
  email: Email,
  password: z.string().min(1, 'Password is required').max(1024),
});
export type LoginInput = z.input<typeof LoginInput>;

export const GroupRef = z.object({ id: Id, name: z.string() });
export type GroupRef = z.infer<typeof GroupRef>;

/** The signed-in staff member, as `GET /api/auth/me` and login return it. */
export const Me = z.object({
  id: Id,
  agencyId: Id,
  agencyName: z.string(),
  email: z.string(),
  displayName: z.string(),
  role: Role,
  presence: z.enum(['available', 'away', 'offline']),
  capacity: z.number().int(),
  groups: z.array(GroupRef),
  /** Send back in the `x-csrf-token` header on every state-changing request. */
  csrfToken: z.string(),
});
export type Me = z.infer<typeof Me>;

// ---- constituents (widget) ------------------------------------------------------------------------

/** Start a widget session for one agency: the key is the agency's public widget key. */
export const WidgetSessionInput = z.strictObject({ agencyKey: z.string().min(1).max(100) });
export type WidgetSessionInput = z.infer<typeof WidgetSessionInput>;

/** A constituent's signed, revocable token, scoped to their own conversations. */
export const WidgetSession = z.object({
  token: z.string(),
  constituentId: Id,
  agency: z.object({ id: Id, name: z.string() }),
  availability: Availability,
});
export type WidgetSession = z.infer<typeof WidgetSession>;

export const StartConversationInput = z.strictObject({
  name: z.string().trim().min(1, 'Name is required').max(120),
  email: z.email().max(254).optional(),
  phone: z
    .string()
    .trim()
    .regex(/^\+?[0-9 ()-]{7,20}$/, 'Phone number is not valid')
    .optional(),
  /** What they need, in their words (the "Other" choice). */
  service: z.string().trim().max(200).optional(),
  /** A published service of the agency's catalog: the case gets its case type. */
  serviceId: Id.optional(),
  /** Answers to the chosen service's up-front questions, by field key. */
  answers: z.record(z.string(), z.unknown()).optional(),
  language: Language.default('en'),
  /** The first message, if the constituent typed one into the pre-chat form. */
  message: MessageBody.optional(),
  clientMessageId: ClientMessageId.optional(),
  /** True when chat is closed or unstaffed and the constituent leaves a message for follow-up. */
  offline: z.boolean().default(false),
});
export type StartConversationInput = z.input<typeof StartConversationInput>;

// ---- operations ---------------------------------------------------------------------------------

export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  database: z.enum(['pglite', 'postgres']),
  realtime: z.enum(['single-node', 'redis']),
  version: z.string(),
});
export type Health = z.infer<typeof Health>;

/**
 * A mobile number for texts: E.164 (+15557654321), or a 10-digit North American number written any common way
 * ("(555) 765-4321"), which becomes +1….
 */
export const MobileNumber = z
  .string()
  .trim()
  .transform((raw) => {
    const digits = raw.replace(/[\s().-]/g, '');
    if (/^\d{10}$/.test(digits)) return `+1${digits}`;
    if (/^1\d{10}$/.test(digits)) return `+${digits}`;
    return digits;
  })
  .pipe(z.string().regex(/^\+[1-9]\d{6,14}$/, 'Enter a mobile number like (555) 765-4321 or +15557654321'));

/** "Continue by text": the chat's replies also go to this number, and texts from it join the chat. */
export const ContinueByTextInput = z.strictObject({ phone: MobileNumber });
export type ContinueByTextInput = z.infer<typeof ContinueByTextInput>;
export const ContinueByTextResult = z.object({ phone: z.string() });
export type ContinueByTextResult = z.infer<typeof ContinueByTextResult>;
