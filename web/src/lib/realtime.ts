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

/** A constituent's socket (the portal): the same token the widget holds; public messages of their own cases. */
export function connectConstituent(token: string): ConsoleSocket {
  return io({
    path: '/socket.io',
    transports: ['websocket'],
    withCredentials: false,
    auth: { protocolVersion: PROTOCOL_VERSION, token },
  });
}
