import { createMailer } from './lib/mailer.js';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RequestHandler } from 'express';
import { createClient } from 'redis';
import { createApp, type App } from './app.js';
import { resilientRedisAdapter } from './realtime/redis-adapter.js';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { seedDemo } from './db/seed-demo.js';
import type { Logger } from './lib/logger.js';
import { DEFAULT_LIMITS, type Limits } from './lib/rate-limit.js';

/** The repository root, from server/src or server/dist. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface RunningServer {
  app: App;
  database: Database;
  url: string;
  port: number;
  demoPassword?: string;
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  logger: Logger;
  /** Tests: keep PGlite in memory instead of DATA_DIR. */
  inMemory?: boolean;
  limits?: Partial<Limits>;
  sessionRecheckMs?: number;
  /** Tests shorten the wait before a staff member without sockets shows as offline. */
  presenceGraceMs?: number;
  /** Serve web/build and widget/dist when they exist (default true). */
  serveWeb?: boolean;
  /** Tests: the clock case timers and SLAs read, and how often the timers run (0: only when told). */
  now?: () => Date;
  caseTimerMs?: number;
}

/** Opens the database, migrates, seeds the demo agency in demo mode, builds the app and listens. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { config, logger } = opts;
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: opts.inMemory ? null : resolve(config.dataDir),
    onPoolError: (err) => logger.warn({ err: err.message }, 'database connection lost; the pool will reconnect'),
  });

  const cleanup: (() => Promise<unknown>)[] = [() => database.close()];
  try {
    const sessionSecret = config.sessionSecret ?? demoSecret(config, opts.inMemory ?? false, logger);
    let demoPassword: string | undefined;
    if (config.demoMode) {
      demoPassword = config.demoPassword ?? randomBytes(9).toString('base64url');
      // The demo agency page is served by us; a second origin for the cross-origin embed demo comes with the widget work.
      await seedDemo(database.db, { password: demoPassword, allowedOrigins: [] });
    }

    let webHandler: RequestHandler | undefined;
    const handlerPath = join(repoRoot, 'web/build/handler.js');
    if (opts.serveWeb !== false && existsSync(handlerPath)) {
      // Imported at run time: type-checking and API tests do not need the web build.
      webHandler = ((await import(pathToFileURL(handlerPath).href)) as { handler: RequestHandler }).handler;
    }

    // Redis first: the app counts rate limits in it, and Socket.IO fans out through it.
    const namespace = deploymentNamespace(config.databaseUrl ?? config.dataDir);
    let redis: ReturnType<typeof createClient> | undefined;
    if (config.redisUrl) {
      redis = createClient({ url: config.redisUrl });
      // Without an error listener a Redis outage would crash the process; we log and keep serving this node.
      redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis error'));
      await redis.connect();
      const client = redis;
      cleanup.unshift(() => client.quit().catch(() => client.destroy()));
    }

    const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom });
    cleanup.push(async () => mailer.close());
    const app = createApp({
      database,
      logger,
      mailer,
      publicBaseUrl: config.publicBaseUrl,
      sessionSecret,
      sessionIdleMs: config.sessionIdleMs,
      sessionMaxMs: config.sessionMaxMs,
      trustProxy: config.trustProxy,
      limits: scaleLimits({ ...DEFAULT_LIMITS, ...opts.limits }, config.rateLimitScale),
      metrics: config.benchMetrics,
      sessionRecheckMs: opts.sessionRecheckMs,
      presenceGraceMs: opts.presenceGraceMs,
      now: opts.now,
      demoMode: config.demoMode,
      caseTimerMs: opts.caseTimerMs,
      twilioApiBaseUrl: config.twilioApiBaseUrl,
      limiterStore: redis ? { client: redis, namespace } : undefined,
      version: readVersion(),
      realtimeKind: config.redisUrl ? 'redis' : 'single-node',
      staticDirs:
        opts.serveWeb === false
          ? undefined
          : { widgetDist: join(repoRoot, 'widget/dist'), demoDir: join(repoRoot, 'widget/demo') },
      webHandler,
      extraOwnOrigins: config.demoMode ? [`http://localhost:${config.port}`, `http://127.0.0.1:${config.port}`] : [],
    });

    if (redis) app.io.adapter(resilientRedisAdapter(redis, namespace) as unknown as Parameters<typeof app.io.adapter>[0]);

    await new Promise<void>((res, rej) => {
      app.httpServer.once('error', rej);
      app.httpServer.listen(config.port, config.host, () => res());
    });
    const address = app.httpServer.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const url = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;

    app.services.timers.start();
    cleanup.unshift(() => app.services.timers.stop());
    app.services.exchange.start();
    cleanup.unshift(() => app.services.exchange.stop());
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        // Stop accepting, let in-flight requests finish, close sockets, then the database.
        const httpClosed = new Promise<void>((r) => app.httpServer.close(() => r()));
        app.httpServer.closeIdleConnections();
        app.services.presence.stop();
        // Only this node's sockets: with the Redis adapter a plain disconnectSockets would close every node's.
        app.io.local.disconnectSockets(true);
        await Promise.race([httpClosed, new Promise((r) => setTimeout(r, 10_000).unref())]);
        app.httpServer.closeAllConnections();
        await new Promise<void>((r) => app.io.close(() => r()));
        for (const fn of cleanup) await fn().catch((err) => logger.warn({ err }, 'shutdown step failed'));
      })());
    return { app, database, url, port, demoPassword, close };
  } catch (err) {
    for (const fn of cleanup) await fn().catch(() => undefined);
    throw err;
  }
}

/** RATE_LIMIT_SCALE (benchmarks only): every budget × scale, so a load generator is not throttled. */
function scaleLimits(limits: Limits, scale: number): Limits {
  if (scale === 1) return limits;
  const entries = Object.entries(limits).map(([k, v]) => [k, { ...v, points: v.points * scale }]);
  return Object.fromEntries(entries) as unknown as Limits;
}

/** Demo mode keeps a generated secret in DATA_DIR so widget tokens survive a restart. */
function demoSecret(config: Config, inMemory: boolean, logger: Logger): string {
  if (inMemory || config.databaseUrl) {
    if (!inMemory) logger.warn('SESSION_SECRET not set: using a random one; widget sessions end at restart');
    return randomBytes(32).toString('base64url');
  }
  const file = join(resolve(config.dataDir), 'session-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

function readVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** A short, stable name for the database this node serves (no credentials): nodes sharing it share Redis keys. */
function deploymentNamespace(database: string): string {
  let id = database;
  try {
    const u = new URL(database);
    id = `${u.hostname}:${u.port}${u.pathname}`;
  } catch {
    /* a data directory */
  }
  return createHash('sha256').update(id).digest('hex').slice(0, 12);
}
