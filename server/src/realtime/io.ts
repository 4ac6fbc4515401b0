import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import {
  MAX_SOCKET_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  isCommandName,
  rooms,
  type Ack,
} from '@casebridge/shared';
import { AppError, toApiError } from '../errors.js';
import { readSessionCookie } from '../http/principal.js';
import type { Logger } from '../lib/logger.js';
import { maskToken } from '../lib/logger.js';
import type { AuthService } from '../modules/auth/auth.service.js';
import type { ConversationService } from '../modules/conversations/conversation.service.js';
import type { MessageService } from '../modules/messages/message.service.js';
import type { PresenceService } from '../modules/staff/presence.service.js';
import type { WidgetService } from '../modules/widget/widget.service.js';
import type { StaffPrincipal } from '../modules/principal.js';
import { runCommand, type CommandHandler, type CommandTable } from './command.js';
import type { AuditRepository } from '../modules/audit/audit.repository.js';
import { recordDenial } from '../modules/audit/denials.js';
import type { AppServer, AppSocket } from './types.js';

export interface RealtimeDeps {
  auth: AuthService;
  widget: WidgetService;
  conversations: ConversationService;
  messages: MessageService;
  presence: PresenceService;
  logger: Logger;
  ownOrigins: string[];
  secureCookies: boolean;
  /** How often an open staff socket re-checks its session (revocation backstop). */
  sessionRecheckMs: number;
  /** Refused commands are audited (issue #11). */
  audit?: AuditRepository;
}

/** Unknown or malformed events allowed per window before the socket is closed. */
const MAX_STRIKES = 20;
const STRIKE_WINDOW_MS = 60_000;

export function createIo(httpServer: HttpServer, deps: RealtimeDeps): AppServer {
  const io: AppServer = new Server(httpServer, {
    // WebSocket only: no long-polling, so no sticky sessions are needed between nodes.
    transports: ['websocket'],
    maxHttpBufferSize: MAX_SOCKET_PAYLOAD_BYTES,
    perMessageDeflate: false,
    serveClient: false,
    connectTimeout: 10_000,
  });

  io.use(async (socket, next) => {
    try {
      const auth = (socket.handshake.auth ?? {}) as { protocolVersion?: unknown; token?: unknown };
      if (auth.protocolVersion !== PROTOCOL_VERSION) return next(new Error('PROTOCOL_MISMATCH'));
      // Tokens in URLs end up in logs and proxies: only the handshake `auth` payload is accepted.
      if (socket.handshake.query.token !== undefined) return next(new Error('TOKEN_IN_QUERY'));
      const origin = socket.handshake.headers.origin;

      if (typeof auth.token === 'string') {
        const principal = await deps.widget.authenticate(auth.token);
        if (!principal) return next(new Error('UNAUTHENTICATED'));
        // Browsers always send Origin on a WebSocket; only pages allowed to embed this agency may connect.
        if (origin && !(await deps.widget.allowedOrigins(principal.agencyId)).includes(origin)) {
          deps.logger.warn({ origin, token: maskToken(auth.token) }, 'widget socket from a disallowed origin');
          return next(new Error('ORIGIN_NOT_ALLOWED'));
        }
        socket.data.principal = principal;
      } else {
        // Staff sockets ride on the session cookie; cross-site WebSocket hijacking is stopped by the Origin check.
        if (origin && !deps.ownOrigins.includes(origin)) return next(new Error('ORIGIN_NOT_ALLOWED'));
        const session = await deps.auth.authenticate(readSessionCookie(socket.handshake.headers.cookie, deps.secureCookies));
        if (!session) return next(new Error('UNAUTHENTICATED'));
        socket.data.principal = session.principal;
        // Auditors take no work: they never show as present (their socket only hears that their session ended).
        if (session.principal.role !== 'auditor') await deps.presence.connected(session.principal);
      }
      socket.data.strikes = 0;
      next();
    } catch (err) {
      deps.logger.error({ err }, 'socket handshake failed');
      next(new Error('UNAVAILABLE'));
    }
  });

  io.on('connection', (socket) => onConnection(io, socket, deps));
  return io;
}

/** The rooms a staff member's socket belongs in: theirs, their session's, their agency's and their groups'. */
function staffRooms(p: StaffPrincipal): string[] {
  // Auditors hear nothing of the agency's work: no queues, groups or conversations (issue #11).
  if (p.role === 'auditor') return [rooms.user(p.userId), rooms.session(p.sessionId)];
  const joined = [rooms.user(p.userId), rooms.session(p.sessionId), rooms.agencyStaff(p.agencyId), ...p.groupIds.map(rooms.group)];
  if (p.role === 'admin') joined.push(rooms.agencyAll(p.agencyId));
  if (p.role === 'supervisor' || p.role === 'admin') joined.push(rooms.supervisors(p.agencyId));
  return joined;
}

function reconcileRooms(socket: AppSocket, wanted: string[]): void {
  for (const r of socket.rooms) if (r !== socket.id && !wanted.includes(r)) void socket.leave(r);
  void socket.join(wanted);
}

/** What each socket command does; built once per server, shared by every socket. */
const tables = new WeakMap<RealtimeDeps, CommandTable>();
function commands(deps: RealtimeDeps): CommandTable {
  let table = tables.get(deps);
  if (table) return table;
  const staffOnly = (s: AppSocket): StaffPrincipal => {
    const principal = s.data.principal;
    if (principal.kind !== 'staff') throw new AppError('FORBIDDEN', 'Staff only');
    return principal;
  };
  table = {
    'message:send': (input, s) => deps.messages.send(s.data.principal, input, s.id),
    'conversation:sync': (input, s) => deps.messages.sync(s.data.principal, input.conversationId, input.afterSeq, input.limit),
    'typing:set': async (input, s) => {
      await deps.messages.typing(s.data.principal, input.conversationId, input.isTyping, s.id);
      return null;
    },
    'conversation:claim': (input, s) => deps.conversations.claim(staffOnly(s), input.conversationId),
    'receipt:set': async (input, s) => {
      await deps.conversations.receipt(s.data.principal, input.conversationId, input.deliveredSeq, input.readSeq);
      return null;
    },
    'conversation:end': (input, s) => deps.conversations.end(s.data.principal, input.conversationId),
    'conversation:transfer': (input, s) => deps.conversations.transfer(staffOnly(s), input),
    'presence:set': (input, s) => deps.presence.set(staffOnly(s), input.presence),
  };
  tables.set(deps, table);
  return table;
}

/** Before each staff command: the session must still be valid (revocation applies to open sockets). */
async function checkStaff(deps: RealtimeDeps, socket: AppSocket, touch: boolean): Promise<void> {
  const p = socket.data.principal;
  if (p.kind !== 'staff') return;
  const s = await deps.auth.recheck(p.sessionId);
  if (!s) {
    socket.emit('session:ended', { reason: 'expired' });
    socket.disconnect(true);
    throw new AppError('UNAUTHENTICATED', 'Your session has ended');
  }
  socket.data.principal = s.principal;
  if (s.principal.role === 'auditor') throw new AppError('FORBIDDEN', 'Auditors read the audit log only');
  if (touch) await deps.auth.touch(p.sessionId, s.lastSeenAt);
}

function denied(deps: RealtimeDeps, socket: AppSocket) {
  const audit = deps.audit;
  if (!audit) return undefined;
  return (err: AppError, event: string) => recordDenial(audit, deps.logger, socket.data.principal, err, { via: 'socket', what: event });
}

function onConnection(io: AppServer, socket: AppSocket, deps: RealtimeDeps) {
  const p = socket.data.principal;
  // No child logger per socket: an idle widget's socket should carry as little as possible.
  const at = { socketId: socket.id, principal: p.kind };
  if (p.kind === 'staff') {
    // Rooms come from the database at every connect, never from a previous connection.
    void socket.join(staffRooms(p));
  } else {
    void socket.join([rooms.constituent(p.constituentId), rooms.widgetSession(p.widgetSessionId)]);
    // A constituent who (re)connects while queued learns their place in line at once.
    deps.conversations
      .queuePositionsFor(p)
      .then((positions) => positions.forEach((pos) => socket.emit('queue:position', pos)))
      .catch(() => undefined);
  }
  deps.logger.info({ ...at, userId: p.kind === 'staff' ? p.userId : undefined }, 'socket connected');

  // One dispatcher for every event. Unknown events get a typed error, and a socket that keeps sending them is closed.
  let windowStart = Date.now();
  socket.onAny((event: unknown, ...args: unknown[]) => {
    if (Date.now() - windowStart > STRIKE_WINDOW_MS) {
      windowStart = Date.now();
      socket.data.strikes = 0;
    }
    if (typeof event === 'string' && isCommandName(event)) {
      // Typing is frequent: the session is checked, not touched.
      const before = () => checkStaff(deps, socket, event !== 'typing:set');
      void runCommand(socket, event, args, commands(deps)[event] as CommandHandler<typeof event>, deps.logger, before, denied(deps, socket));
    } else {
      socket.data.strikes++;
      const ack = args[args.length - 1];
      if (typeof ack === 'function') {
        (ack as (res: Ack<never>) => void)({
          ok: false,
          error: toApiError(new AppError('UNKNOWN_EVENT', 'Unknown event')),
        });
      }
    }
    if (socket.data.strikes > MAX_STRIKES) {
      deps.logger.warn({ ...at, strikes: socket.data.strikes }, 'closing socket after repeated protocol errors');
      socket.disconnect(true);
    }
  });

  const timer =
    p.kind === 'staff'
      ? setInterval(() => {
          deps.auth
            .recheck(p.sessionId)
            .then((s) => {
              if (!s && socket.connected) {
                socket.emit('session:ended', { reason: 'expired' });
                socket.disconnect(true);
                return;
              }
              // Rooms follow the account's current role and groups, even if a live change was missed.
              if (s) reconcileRooms(socket, staffRooms(s.principal));
            })
            .catch(() => undefined);
        }, deps.sessionRecheckMs)
      : undefined;
  timer?.unref();
  socket.on('disconnect', (reason) => {
    if (timer) clearInterval(timer);
    if (p.kind === 'staff') deps.presence.disconnected(p);
    deps.logger.info({ ...at, reason }, 'socket disconnected');
  });
  void io;
}
