import { z } from 'zod';
import type { ApiError } from './errors.js';
import {
  ConversationRef,
  ConversationStatus,
  ConversationSummary,
  Message,
  MessageDelivery,
  ReceiptInput,
  SendMessageInput,
  SendMessageResult,
  SyncInput,
  SyncResult,
  TypingInput,
} from './schemas.js';
import { CaseChanged, Mention, PresenceChanged, PresenceInput, SlaAlert, TransferInput } from './console.js';

/**
 * Client → server commands: the single source of truth for what a socket may ask.
 * Every command is acknowledged with `Ack<output>`; an input that fails its schema gets INVALID_PAYLOAD.
 */
export const clientCommands = {
  /** Send a message; idempotent on (conversationId, clientMessageId). */
  'message:send': { input: SendMessageInput, output: SendMessageResult },
  /** Everything after `afterSeq`, in order: how a reconnecting client fills its gap. */
  'conversation:sync': { input: SyncInput, output: SyncResult },
  /** Tell the other side you are (or stopped) typing. */
  'typing:set': { input: TypingInput, output: z.null() },
  /** Staff: take a queued conversation; exactly one agent can win. */
  'conversation:claim': { input: ConversationRef, output: ConversationSummary },
  /** Tell the other side how far you have received and read. */
  'receipt:set': { input: ReceiptInput, output: z.null() },
  /** End a conversation (its constituent or staff who may act on it). */
  'conversation:end': { input: ConversationRef, output: z.object({ conversationId: z.uuid(), status: ConversationStatus }) },
  /** Staff: hand a conversation to a colleague or a group's queue, with an internal note. */
  'conversation:transfer': { input: TransferInput, output: ConversationSummary },
  /** Staff: set your own presence (available, away, offline). */
  'presence:set': { input: PresenceInput, output: PresenceChanged },
} as const;

export type ClientCommands = typeof clientCommands;
export type CommandName = keyof ClientCommands;
export type CommandInput<E extends CommandName> = z.output<ClientCommands[E]['input']>;
export type CommandOutput<E extends CommandName> = z.output<ClientCommands[E]['output']>;

/** The acknowledgement every command gets. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: ApiError };

/** Derived from the catalog, never hand-written: a schema change is a compile error in every package. */
export type ClientToServerEvents = {
  [E in CommandName]: (input: z.input<ClientCommands[E]['input']>, ack: (res: Ack<CommandOutput<E>>) => void) => void;
};

export function isCommandName(name: string): name is CommandName {
  return Object.prototype.hasOwnProperty.call(clientCommands, name);
}

/** Typing as another side sees it. */
export const TypingChanged = z.object({
  conversationId: z.uuid(),
  by: z.enum(['agent', 'constituent']),
  isTyping: z.boolean(),
});
export type TypingChanged = z.infer<typeof TypingChanged>;

/** The other side's delivery / read cursor moved. */
export const ReceiptChanged = z.object({
  conversationId: z.uuid(),
  by: z.enum(['agent', 'constituent']),
  deliveredSeq: z.number().int(),
  readSeq: z.number().int(),
});
export type ReceiptChanged = z.infer<typeof ReceiptChanged>;

/** A queued constituent's place in line, recomputed whenever the queue moves. */
export const QueuePosition = z.object({
  conversationId: z.uuid(),
  position: z.number().int().positive(),
  estimatedWaitSeconds: z.number().int().nonnegative(),
});
export type QueuePosition = z.infer<typeof QueuePosition>;

/** What a constituent learns when their conversation changes state. */
export const ConversationStatusChanged = z.object({ conversationId: z.uuid(), status: ConversationStatus });
export type ConversationStatusChanged = z.infer<typeof ConversationStatusChanged>;

/**
 * Server → client broadcasts. Payloads are already filtered for the audience of the room they go to;
 * which room hears what is decided in one place, the server's notifier.
 */
export interface ServerToClientEvents {
  'message:created': (message: Message) => void;
  /**
   * Staff: a text the agency sent was queued, sent, delivered or failed. Events from different nodes can arrive
   * out of order: apply one only if its `attempt` is newer, or the same attempt and further along
   * (see `deliveryIsNewer`).
   */
  'message:delivery': (change: DeliveryChanged) => void;
  /** Staff: a new conversation entered one of your groups. */
  'conversation:created': (conversation: ConversationSummary) => void;
  /** Staff: a conversation in one of your groups changed (claimed, ended, …). */
  'conversation:updated': (conversation: ConversationSummary) => void;
  /** Constituent: your conversation changed state. */
  'conversation:status': (change: ConversationStatusChanged) => void;
  'typing:changed': (typing: TypingChanged) => void;
  'receipt:changed': (receipt: ReceiptChanged) => void;
  /** Constituent: your place in line moved. */
  'queue:position': (position: QueuePosition) => void;
  /** Staff: a colleague's presence changed. */
  'presence:changed': (change: PresenceChanged) => void;
  /** Staff: a colleague mentioned you in an internal note. */
  'mention:created': (mention: Mention) => void;
  /** Staff: a case of one of your groups changed (status, priority, timeline). */
  'case:updated': (change: CaseChanged) => void;
  /** Staff (the case's assignee and the supervisors): an SLA is at 75 % or past its target. */
  'sla:alert': (alert: SlaAlert) => void;
  /** Sent just before the server closes a socket whose session ended (logout, disabled, expired). */
  'session:ended': (info: { reason: 'logout' | 'disabled' | 'expired' | 'revoked' }) => void;
}

/** Room names in one place, so "who hears what" is reviewable. */
export const rooms = {
  /** Every staff socket of one user: closed together on logout or disable. */
  user: (userId: string) => `user:${userId}`,
  /** Every socket of one staff session. */
  session: (sessionId: string) => `session:${sessionId}`,
  /** Staff who work a group's queue. */
  group: (groupId: string) => `group:${groupId}`,
  /** Every signed-in staff member of an agency: presence. */
  agencyStaff: (agencyId: string) => `agency:${agencyId}:staff`,
  /** Staff who may see every conversation of an agency (admins). */
  agencyAll: (agencyId: string) => `agency:${agencyId}:all`,
  /** An agency's supervisors: SLA alerts and, later, the live dashboard. */
  supervisors: (agencyId: string) => `agency:${agencyId}:supervisors`,
  /** Every socket of one constituent: public messages of their conversations only. */
  constituent: (constituentId: string) => `constituent:${constituentId}`,
  /** Every socket of one widget session (revocation). */
  widgetSession: (widgetSessionId: string) => `widget-session:${widgetSessionId}`,
} as const;

/** What a socket sends in `auth` at the handshake. Staff authenticate by session cookie instead of a token. */
export interface HandshakeAuth {
  protocolVersion: number;
  /** A constituent's widget token. */
  token?: string;
}

export interface DeliveryChanged {
  conversationId: string;
  messageId: string;
  delivery: MessageDelivery;
  /** How many times the text was handed to Twilio: a retry starts a new attempt. */
  attempt: number;
}

const DELIVERY_RANK: Record<MessageDelivery['status'], number> = { pending: 0, sending: 1, queued: 2, sent: 3, delivered: 4, undelivered: 4, failed: 4 };

/** Whether a delivery update should replace what a client holds (events may arrive out of order). */
export function deliveryIsNewer(held: { status: MessageDelivery['status']; attempt: number } | undefined, next: { status: MessageDelivery['status']; attempt: number }): boolean {
  if (!held) return true;
  if (next.attempt !== held.attempt) return next.attempt > held.attempt;
  return DELIVERY_RANK[next.status] > DELIVERY_RANK[held.status];
}
