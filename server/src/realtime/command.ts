import { clientCommands, type Ack, type CommandInput, type CommandName, type CommandOutput } from '@casebridge/shared';
import { AppError, fromZod, toApiError } from '../errors.js';
import { nulPath } from '../http/parse.js';
import type { Logger } from '../lib/logger.js';
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
      await before?.();
      const data = await handler(parsed.data as CommandInput<E>, socket);
      ack({ ok: true, data });
    } catch (err) {
      if (!(err instanceof AppError)) logger.error({ err, event, socketId: socket.id }, 'socket command failed');
      ack({ ok: false, error: toApiError(err) });
    }
  };
  // Socket.IO cannot relate a generic event name to its listener type; the wrapper's signature is the check.
  socket.on(event, listener as never);
}
