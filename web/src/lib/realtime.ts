import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '@casebridge/shared';
// The constants entry, not the package root: the root carries every zod schema, which the first screen does not need.
import { PROTOCOL_VERSION } from '@casebridge/shared/constants';

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
