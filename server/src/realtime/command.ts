import { clientCommands, type Ack, type CommandInput, type CommandName, type CommandOutput } from '@casebridge/shared';
import { AppError, fromZod, toApiError } from '../errors.js';
import { nulPath } from '../http/parse.js';
import type { Logger } from '../lib/logger.js';
import { isDenial } from '../modules/audit/denials.js';
import { hashUserAgent, runWithContext, type RequestContext } from '../lib/request-context.js';
import type { AppSocket } from './types.js';

/** The one place untyped socket data becomes typed: validate, run, acknowledge. Never throws. */
export function onCommand<E extends CommandName>(
  socket: AppSocket,
  event: E,
  handler: (input: CommandInput<E>, socket: AppSocket) => Promise<CommandOutput<E>>,
  logger: Logger,
  before?: () => Promise<void>,
): void {
  const schema = clientCommands[event].input;
  const listener = async (...args: unknown[]) => {
    const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (res: Ack<unknown>) => void) : undefined;
    if (!ack) {
      // Every command is acknowledged; one without a callback is a protocol error, not a crash.
      socket.data.strikes++;
      return;
    }
    if (args.length !== 1) {
      ack({ ok: false, error: toApiError(new AppError('INVALID_PAYLOAD', 'Expected exactly one payload argument')) });
      return;
    }
    // PostgreSQL cannot store NUL: refuse it here, naming the field, rather than fail in the database.
    const nul = nulPath(args[0]);
    if (nul) {
      socket.data.strikes++;
      const message = 'Text cannot contain NUL characters';
      ack({ ok: false, error: toApiError(new AppError('INVALID_PAYLOAD', message, { issues: [{ path: nul, message }] })) });
      return;
    }
    const parsed = schema.safeParse(args[0]);
    if (!parsed.success) {
      socket.data.strikes++;
      ack({ ok: false, error: toApiError(fromZod(parsed.error)) });
      return;
    }
    try {
      // The audit trail reads the socket's address from here.
      const data = await runWithContext(contextOf(socket), async () => {
        await before?.();
        return handler(parsed.data as CommandInput<E>, socket);
      });
      ack({ ok: true, data });
    } catch (err) {
      if (!(err instanceof AppError)) logger.error({ err, event, socketId: socket.id }, 'socket command failed');
      else if (isDenial(err)) {
        const hook = deniedHooks.get(socket);
        if (hook) await runWithContext(contextOf(socket), () => hook(err, event));
      }
      ack({ ok: false, error: toApiError(err) });
    }
  };
  // Socket.IO cannot relate a generic event name to its listener type; the wrapper's signature is the check.
  socket.on(event, listener as never);
}

const deniedHooks = new WeakMap<AppSocket, (err: AppError, event: string) => Promise<void>>();
/** Called for every refused command of this socket (FORBIDDEN, NOT_FOUND): the audit trail records it. */
export function onDenied(socket: AppSocket, fn: (err: AppError, event: string) => Promise<void>): void {
  deniedHooks.set(socket, fn);
}

const contexts = new WeakMap<AppSocket, RequestContext>();
function contextOf(socket: AppSocket): RequestContext {
  let ctx = contexts.get(socket);
  if (!ctx) {
    const ua = socket.handshake.headers['user-agent'];
    ctx = { sourceIp: socket.handshake.address, userAgentHash: hashUserAgent(typeof ua === 'string' ? ua : undefined) };
    contexts.set(socket, ctx);
  }
  return ctx;
}
