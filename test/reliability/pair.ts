import { afterAll, beforeAll } from '@jest/globals';
import { Balancer, Node, PrivatePostgres, PrivateRedis } from '../support/cluster.js';
import { createTestDatabase } from '../support/harness.js';

export interface Pair {
  a: Node;
  b: Node;
  /** A balancer over the live nodes (the clients' way in), when asked for. */
  lb: Balancer;
  /** Private instances a test may stop and start, when asked for. */
  redis: PrivateRedis;
  pg: PrivatePostgres;
  databaseUrl: string;
}

/**
 * Two CaseBridge node processes for one describe block: on a fresh database of the shared PostgreSQL (or a
 * private cluster), with the shared Redis (or a private one), optionally behind a balancer; torn down after.
 * The nodes trust the proxy header, so each simulated visitor has an address of its own.
 */
export function processPair(opts: { privateRedis?: boolean; privatePostgres?: boolean; balancer?: boolean } = {}): Pair {
  const pair = {} as Pair;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (opts.privatePostgres) {
      pair.pg = await PrivatePostgres.start();
      pair.databaseUrl = pair.pg.url;
    } else {
      const db = await createTestDatabase();
      pair.databaseUrl = db.url;
      drop = db.drop;
    }
    if (opts.privateRedis) pair.redis = await PrivateRedis.start();
    const env = { DATABASE_URL: pair.databaseUrl, REDIS_URL: pair.redis?.url ?? process.env.REDIS_URL!, TRUST_PROXY: 'true' };
    pair.a = await Node.start(env);
    pair.b = await Node.start(env);
    if (opts.balancer) pair.lb = await Balancer.start(() => [pair.a, pair.b].filter((n) => n.alive).map((n) => n.port));
  }, 120_000);
  afterAll(async () => {
    await pair.lb?.close();
    await Promise.all([pair.a?.kill('SIGTERM'), pair.b?.kill('SIGTERM')]);
    await pair.redis?.stop();
    await pair.pg?.destroy();
    await drop?.();
  });
  return pair;
}
