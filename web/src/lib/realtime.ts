import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, type ClientToServerEvents, type ServerToClientEvents } from '@casebridge/shared';

export type ConsoleSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The console's socket: same origin, authenticated by the session cookie, WebSocket only. */
export function connectConsole(): ConsoleSocket {
  return io({
    path: '/socket.io',
    transports: ['websocket'],
    withCredentials: true,
    auth: { protocolVersion: PROTOCOL_VERSION },
  });
}
