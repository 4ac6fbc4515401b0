import type { Server, Socket } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from '@casebridge/shared';
import type { Principal } from '../modules/principal.js';

export interface SocketData {
  principal: Principal;
  /** Unknown or malformed events in the current window; too many closes the socket. */
  strikes: number;
}

// eslint-style note: no inter-server events yet.
export type AppServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type AppSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
