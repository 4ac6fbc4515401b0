import {
  rooms,
  type CaseChanged,
  type ConversationSummary,
  type Mention,
  type Message,
  type DeliveryChanged,
  type PresenceChanged,
  type QueuePosition,
  type SlaAlert,
} from '@casebridge/shared';
import type { AppServer } from './types.js';

/** The parts of a conversation that decide its audience. */
export interface Audience {
  /** The conversation id. */
  id: string;
  agencyId: string;
  groupId: string;
  constituentId: string;
  assigneeId?: string | null;
}

/** Where a conversation was before a transfer: its old group and owner hear that it left. */
export type Previous = { groupId: string; assigneeId: string | null };

export type SessionEndReason = 'logout' | 'disabled' | 'expired' | 'revoked';

/** Every "who hears what" rule lives here. Services call this; nothing else emits to rooms. */
export interface Notifier {
  /** `exceptSocketId`: the sending socket, which has the message in its acknowledgement already. */
  messageCreated(message: Message, audience: Audience, previous?: Previous, exceptSocketId?: string): void;
  /** A text the agency sent changed state: staff only (the constituent has it on their phone). */
  messageDelivery(audience: Audience, change: DeliveryChanged): void;
  conversationCreated(summary: ConversationSummary): void;
  conversationUpdated(summary: ConversationSummary, previous?: Previous): void;
  presenceChanged(agencyId: string, change: PresenceChanged): void;
  mentioned(userIds: string[], mention: Mention): void;
  caseUpdated(audience: { agencyId: string; groupId: string | null; assigneeId: string | null }, change: CaseChanged): void;
  typing(audience: Audience, by: 'agent' | 'constituent', isTyping: boolean, exceptSocketId?: string): void;
  sessionEnded(target: { sessionId?: string; userId?: string; widgetSessionId?: string }, reason: SessionEndReason): void;
  receiptChanged(audience: Audience, by: 'agent' | 'constituent', deliveredSeq: number, readSeq: number): void;
  queuePosition(constituentId: string, position: QueuePosition): void;
  /** A colleague's role or groups changed: their sockets (on every node) leave and join rooms to match. */
  accessChanged(
    who: { userId: string; agencyId: string },
    before: { role: string; groupIds: string[] },
    after: { role: string; groupIds: string[] },
  ): void;
  /** An SLA warning or breach: the case's assignee and the agency's supervisors. */
  slaAlert(audience: { agencyId: string; assigneeId: string | null }, alert: SlaAlert): void;
}

/** Staff who may see a conversation: its group's members, its owner and the agency's admins. */
function staffRooms(a: { agencyId: string; groupId: string | null; assigneeId?: string | null }, previous?: Previous): string[] {
  const out = [rooms.agencyAll(a.agencyId)];
  if (a.groupId) out.push(rooms.group(a.groupId));
  if (a.assigneeId) out.push(rooms.user(a.assigneeId));
  if (previous) {
    out.push(rooms.group(previous.groupId));
    if (previous.assigneeId) out.push(rooms.user(previous.assigneeId));
  }
  return out;
}

export function createNotifier(io: AppServer): Notifier {
  return {
    messageCreated(message, audience, previous, exceptSocketId) {
      const to = (r: string | string[]) => (exceptSocketId ? io.to(r).except(exceptSocketId) : io.to(r));
      to(staffRooms(audience, previous)).emit('message:created', message);
      // Internal notes never reach a constituent: only public messages go to the constituent's room.
      if (message.visibility === 'public') {
        to(rooms.constituent(audience.constituentId)).emit('message:created', message);
      }
    },
    accessChanged(who, before, after) {
      const roomsOf = (a: { role: string; groupIds: string[] }) => [
        ...a.groupIds.map(rooms.group),
        ...(a.role === 'admin' ? [rooms.agencyAll(who.agencyId)] : []),
        ...(a.role === 'admin' || a.role === 'supervisor' ? [rooms.supervisors(who.agencyId)] : []),
      ];
      const had = roomsOf(before);
      const has = roomsOf(after);
      const leave = had.filter((r) => !has.includes(r));
      const join = has.filter((r) => !had.includes(r));
      if (leave.length) io.in(rooms.user(who.userId)).socketsLeave(leave);
      if (join.length) io.in(rooms.user(who.userId)).socketsJoin(join);
    },
    messageDelivery(audience, change) {
      io.to(staffRooms(audience)).emit('message:delivery', change);
    },
    conversationCreated(summary) {
      io.to(staffRooms(summary)).emit('conversation:created', summary);
    },
    conversationUpdated(summary, previous) {
      io.to(staffRooms(summary, previous)).emit('conversation:updated', summary);
      io.to(rooms.constituent(summary.constituentId)).emit('conversation:status', {
        conversationId: summary.id,
        status: summary.status,
      });
    },
    typing(audience, by, isTyping, exceptSocketId) {
      const target = by === 'agent' ? [rooms.constituent(audience.constituentId)] : staffRooms(audience);
      const op = exceptSocketId ? io.to(target).except(exceptSocketId) : io.to(target);
      op.emit('typing:changed', { conversationId: audience.id, by, isTyping });
    },
    receiptChanged(audience, by, deliveredSeq, readSeq) {
      // The other side learns how far this side got; staff see both sides' cursors.
      const target = by === 'agent' ? [rooms.constituent(audience.constituentId), ...staffRooms(audience)] : staffRooms(audience);
      io.to(target).emit('receipt:changed', { conversationId: audience.id, by, deliveredSeq, readSeq });
    },
    mentioned(userIds, mention) {
      if (userIds.length) io.to(userIds.map(rooms.user)).emit('mention:created', mention);
    },
    presenceChanged(agencyId, change) {
      io.to(rooms.agencyStaff(agencyId)).emit('presence:changed', change);
    },
    caseUpdated(audience, change) {
      io.to(staffRooms(audience)).emit('case:updated', change);
    },
    slaAlert(audience, alert) {
      const target = [rooms.supervisors(audience.agencyId)];
      if (audience.assigneeId) target.push(rooms.user(audience.assigneeId));
      io.to(target).emit('sla:alert', alert);
    },
    queuePosition(constituentId, position) {
      io.to(rooms.constituent(constituentId)).emit('queue:position', position);
    },
    sessionEnded(target, reason) {
      const room = target.sessionId
        ? rooms.session(target.sessionId)
        : target.userId
          ? rooms.user(target.userId)
          : target.widgetSessionId
            ? rooms.widgetSession(target.widgetSessionId)
            : undefined;
      if (!room) return;
      io.to(room).emit('session:ended', { reason });
      // Works across nodes through the adapter; the closed sockets must re-authenticate to come back.
      io.in(room).disconnectSockets(true);
    },
  };
}

/** For code paths that run without sockets (scripts, seeding). */
export const silentNotifier: Notifier = {
  messageCreated() {},
  messageDelivery() {},
  accessChanged() {},
  conversationCreated() {},
  conversationUpdated() {},
  presenceChanged() {},
  mentioned() {},
  caseUpdated() {},
  typing() {},
  sessionEnded() {},
  receiptChanged() {},
  slaAlert() {},
  queuePosition() {},
};
