import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError } from '../errors.js';

/**
 * A connected node-redis client, and the namespace of the deployment it counts for: nodes sharing a database
 * share one budget; another deployment (or a test's own database) on the same Redis never sees its counts.
 */
export interface LimiterStore {
  client: object;
  namespace: string;
}

export interface LimitSpec {
  points: number;
  /** Window in seconds. */
  duration: number;
}

/**
 * A named limit keyed by whatever the caller chooses (session, IP, account). With several nodes the count
 * lives in Redis, so a client cannot multiply its budget by spreading over nodes; while Redis is unreachable
 * each node counts in its own memory instead (the limit still holds per node: it never fails open).
 */
export class Limiter {
  private readonly limiter: RateLimiterAbstract;
  constructor(
    private readonly name: string,
    spec: LimitSpec,
    store?: LimiterStore,
  ) {
    const memory = new RateLimiterMemory({ keyPrefix: name, points: spec.points, duration: spec.duration });
    this.limiter = store
      ? new RateLimiterRedis({
          storeClient: store.client,
          useRedisPackage: true,
          // Not ready (down, reconnecting): count in memory at once instead of queueing behind the outage.
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory,
          keyPrefix: `cb-rl:${store.namespace}:${name}`,
          points: spec.points,
          duration: spec.duration,
        })
      : memory;
  }

  /** Consumes one point; throws RATE_LIMITED with retryAfterMs when the key is over its limit. */
  async consume(key: string, message = 'Too many requests. Please wait a moment and try again.'): Promise<void> {
    try {
      await this.limiter.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        throw new AppError('RATE_LIMITED', message, { retryAfterMs: Math.max(1, err.msBeforeNext) });
      }
      throw err;
    }
  }

  /** Throws RATE_LIMITED if the key is already over its limit, without consuming. */
  async check(key: string, message?: string): Promise<void> {
    const res = await this.limiter.get(key);
    if (res && res.remainingPoints <= 0 && res.consumedPoints > 0) {
      throw new AppError('RATE_LIMITED', message ?? 'Too many attempts. Please wait and try again.', {
        retryAfterMs: Math.max(1, res.msBeforeNext),
      });
    }
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }

  toString() {
    return `Limiter(${this.name})`;
  }
}

export interface Limits {
  /** Failed sign-ins per client IP. */
  loginFailuresPerIp: LimitSpec;
  /** Failed sign-ins per account. */
  loginFailuresPerAccount: LimitSpec;
  /** New widget sessions per IP. */
  widgetSessionsPerIp: LimitSpec;
  /** New conversations per widget session. */
  conversationsPerSession: LimitSpec;
  /** New conversations per IP (library / carrier NAT safe). */
  conversationsPerIp: LimitSpec;
  /** Messages per widget session. */
  messagesPerSession: LimitSpec;
  /** File uploads per constituent (counted in the database). */
  uploadsPerConstituent: LimitSpec;
  /** Transcript emails per conversation: nobody turns us into a mail cannon. */
  transcriptEmailsPerConversation: LimitSpec;
  /** Portal one-time codes asked for per IP. */
  portalCodesPerIp: LimitSpec;
  /** Portal sign-in tries per IP (each code also allows only 5 tries). */
  portalSignInsPerIp: LimitSpec;
  /** Requests started in the portal per IP. */
  portalRequestsPerIp: LimitSpec;
}

/** Starting values from RELIABILITY.md §5.2-F; sign-in counts failures only, so a shared office IP is not locked out. */
export const DEFAULT_LIMITS: Limits = {
  loginFailuresPerIp: { points: 30, duration: 5 * 60 },
  loginFailuresPerAccount: { points: 10, duration: 15 * 60 },
  widgetSessionsPerIp: { points: 60, duration: 60 },
  conversationsPerSession: { points: 3, duration: 3600 },
  conversationsPerIp: { points: 60, duration: 3600 },
  messagesPerSession: { points: 30, duration: 60 },
  uploadsPerConstituent: { points: 10, duration: 3600 },
  transcriptEmailsPerConversation: { points: 3, duration: 3600 },
  portalCodesPerIp: { points: 10, duration: 15 * 60 },
  portalSignInsPerIp: { points: 30, duration: 15 * 60 },
  portalRequestsPerIp: { points: 10, duration: 3600 },
};
