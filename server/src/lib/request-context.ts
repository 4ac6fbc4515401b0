import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';

/**
 * Who is on the other end of the request or socket command being handled: the audit trail takes the source IP
 * and a hash of the User-Agent from here when the caller did not name them. Nothing else reads it.
 */
export interface RequestContext {
  sourceIp?: string;
  userAgentHash?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/** The first 16 hex characters of sha256(User-Agent): enough to tell clients apart, not to store the header. */
export function hashUserAgent(ua: string | undefined): string | undefined {
  return ua ? createHash('sha256').update(ua).digest('hex').slice(0, 16) : undefined;
}

/** Express: each request runs in its own context (its IP as Express sees it, honouring TRUST_PROXY). */
export function requestContext(): (req: { ip?: string; headers: Record<string, string | string[] | undefined> }, res: unknown, next: () => void) => void {
  return (req, _res, next) => {
    const ua = req.headers['user-agent'];
    runWithContext({ sourceIp: req.ip, userAgentHash: hashUserAgent(typeof ua === 'string' ? ua : undefined) }, next);
  };
}
