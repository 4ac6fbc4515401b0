import { clientCommands, type Ack, type CommandInput, type CommandName, type CommandOutput } from '@casebridge/shared';
import { AppError, fromZod, toApiError } from '../errors.js';
import { nulPath } from '../http/parse.js';
import type { Logger } from '../lib/logger.js';
import { isDenial } from '../modules/audit/denials.js';
import { hashUserAgent, runWithContext, type RequestContext } from '../lib/request-context.js';
import type { AppSocket } from './types.js';

/** What a command does, given its validated input and the socket it came on. */
export type CommandHandler<E extends CommandName> = (input: CommandInput<E>, socket: AppSocket) => Promise<CommandOutput<E>>;
export type CommandTable = { [E in CommandName]: CommandHandler<E> };

/**
 * The one place untyped socket data becomes typed: validate, run, acknowledge. Never throws. One dispatcher
 * per socket (not a listener per command): an idle widget's socket carries as little as possible.
 */
export async function runCommand<E extends CommandName>(
  socket: AppSocket,
  event: E,
  args: unknown[],
  handler: CommandHandler<E>,
  logger: Logger,
  before?: () => Promise<void>,
  /** Every refused command (FORBIDDEN, NOT_FOUND) of a signed-in caller: the audit trail records it. */
  denied?: (err: AppError, event: string) => Promise<void>,
): Promise<void> {
  const schema = clientCommands[event].input;
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
    else if (isDenial(err) && denied) {
      await runWithContext(contextOf(socket), () => denied(err, event)).catch(() => undefined);
    }
    ack({ ok: false, error: toApiError(err) });
  }
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
