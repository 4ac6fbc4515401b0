/**
 * True when the database could not be reached or dropped the connection (restart, failover, network): the
 * request may be tried again unchanged (every write a client retries is idempotent). Anything else is a real error.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const NETWORK = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND'];
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as typeof e, i++) {
    const code = typeof e.code === 'string' ? e.code : '';
    // 08xxx connection exceptions, 57P01-03 shutdown / cannot connect now, 53300 too many connections.
    if (/^(08...|57P0[123]|53300)$/.test(code) || NETWORK.includes(code)) return true;
    const message = typeof e.message === 'string' ? e.message : '';
    if (/Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection/i.test(message)) return true;
  }
  return false;
}
