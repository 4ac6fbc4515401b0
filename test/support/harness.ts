import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import request from 'supertest';
import { io as ioc, type Socket } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  type ClientToServerEvents,
  type Me,
  type ServerToClientEvents,
  type WidgetSession,
} from '@casebridge/shared';
import { loadConfig } from '../../server/src/config.js';
import { createLogger } from '../../server/src/lib/logger.js';
import type { Limits } from '../../server/src/lib/rate-limit.js';
import { startServer, type RunningServer } from '../../server/src/server.js';
import { DEMO_AGENCY_KEY } from '../../server/src/db/seed-demo.js';
import { agencies, groups } from '../../server/src/db/schema.js';
import { freePort } from './process.js';

export type Backend = 'pglite' | 'postgres';
export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export const DEMO_PASSWORD = 'test-demo-password-1';
export { DEMO_AGENCY_KEY };

/** PGlite always; PostgreSQL too when DATABASE_URL is set (CI sets it). */
export function backends(): Backend[] {
  return process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
}

/** A fresh, empty PostgreSQL database on the DATABASE_URL server; dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = new URL(process.env.DATABASE_URL!);
  const name = `cb_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.href });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base.href);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: async () => {
      const c = new pg.Client({ connectionString: base.href });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface HarnessOptions {
  limits?: Partial<Limits>;
  sessionRecheckMs?: number;
  presenceGraceMs?: number;
  env?: Record<string, string>;
  /** Reuse an existing PostgreSQL database (several nodes). */
  databaseUrl?: string;
  redisUrl?: string;
  serveWeb?: boolean;
  /** The clock SLAs and case timers read (default: real time). */
  now?: () => Date;
  /** Case timers run every this many ms; by default never on their own (tests call tick). */
  caseTimerMs?: number;
  /** Receives every log line (JSON) the server writes. */
  logSink?: (line: string) => void;
}

export interface Harness {
  backend: Backend;
  server: RunningServer;
  url: string;
  http: ReturnType<typeof request>;
  login(email?: string, password?: string): Promise<StaffSession>;
  widgetSession(agencyKey?: string): Promise<WidgetSession>;
  startConversation(token: string, body?: Record<string, unknown>): Promise<{ id: string; caseReference: string }>;
  staffSocket(s: StaffSession, extra?: SocketOpts): Promise<ClientSocket>;
  constituentSocket(token: string, extra?: SocketOpts): Promise<ClientSocket>;
  close(): Promise<void>;
}

export interface StaffSession {
  cookie: string;
  me: Me;
  csrf: string;
}

export interface SocketOpts {
  origin?: string;
  auth?: Record<string, unknown>;
  query?: Record<string, string>;
  /** Runs before the socket connects: listeners for events sent on connection go here. */
  before?: (socket: ClientSocket) => void;
}

/** Starts the real server (Express + Socket.IO + database) on an ephemeral loopback port. */
export async function startTestServer(backend: Backend, opts: HarnessOptions = {}): Promise<Harness> {
  let dropDb: (() => Promise<void>) | undefined;
  let databaseUrl = opts.databaseUrl;
  if (backend === 'postgres' && !databaseUrl) {
    const db = await createTestDatabase();
    databaseUrl = db.url;
    dropDb = db.drop;
  }
  // Pages (browser tests) need the public URL to be the real one; API tests take any port.
  const port = opts.serveWeb ? await freePort() : 0;
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: String(port),
    ...(port ? { PUBLIC_BASE_URL: `http://127.0.0.1:${port}` } : {}),
    HOST: '127.0.0.1',
    DEMO_MODE: 'true',
    CASEBRIDGE_DEMO_PASSWORD: DEMO_PASSWORD,
    SESSION_SECRET: 'test-secret-test-secret-test-secret-42',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...opts.env,
  });
  const logger = opts.logSink
    ? createLogger(opts.env?.LOG_LEVEL ?? 'trace', { write: (line: string) => opts.logSink!(line) })
    : createLogger(config.logLevel);
  const server = await startServer({
    config,
    logger,
    inMemory: true,
    limits: opts.limits,
    sessionRecheckMs: opts.sessionRecheckMs,
    presenceGraceMs: opts.presenceGraceMs ?? 300,
    serveWeb: opts.serveWeb ?? false,
    now: opts.now,
    caseTimerMs: opts.caseTimerMs ?? 0,
  });
  // PUBLIC_BASE_URL defaults to the configured port; with port 0 tests use the real one.
  const url = server.url;
  const sockets: ClientSocket[] = [];

  const connect = (auth: Record<string, unknown>, headers: Record<string, string>, extra?: SocketOpts) =>
    new Promise<ClientSocket>((resolve, reject) => {
      const s: ClientSocket = ioc(url, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        auth: { protocolVersion: PROTOCOL_VERSION, ...auth, ...extra?.auth },
        extraHeaders: { ...headers, ...(extra?.origin ? { origin: extra.origin } : {}) },
        query: extra?.query,
      });
      sockets.push(s);
      extra?.before?.(s);
      s.once('connect', () => resolve(s));
      s.once('connect_error', (err) => {
        s.close();
        reject(err);
      });
    });

  const h: Harness = {
    backend,
    server,
    url,
    http: request(url),
    async login(email = 'agent@demo.gov', password = DEMO_PASSWORD) {
      const res = await request(url).post('/api/auth/login').send({ email, password });
      if (res.status !== 200) throw new Error(`login ${email} failed: ${res.status} ${JSON.stringify(res.body)}`);
      const setCookie = res.headers['set-cookie'] as unknown as string[];
      const cookie = setCookie[0]!.split(';')[0]!;
      return { cookie, me: res.body as Me, csrf: (res.body as Me).csrfToken };
    },
    async widgetSession(agencyKey = DEMO_AGENCY_KEY) {
      const res = await request(url).post('/api/widget/session').send({ agencyKey });
      if (res.status !== 201) throw new Error(`widget session failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as WidgetSession;
    },
    async startConversation(token, body = {}) {
      const res = await request(url)
        .post('/api/widget/conversations')
        .set('Authorization', `Bearer ${token}`)
        .send({ name: 'Pat Resident', language: 'en', ...body });
      if (res.status !== 201 && res.status !== 200) throw new Error(`start failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.conversation as { id: string; caseReference: string };
    },
    staffSocket: (s, extra) => connect({}, { cookie: s.cookie }, extra),
    constituentSocket: (token, extra) => connect({ token }, {}, extra),
    async close() {
      sockets.forEach((s) => s.close());
      await server.close();
      await dropDb?.();
    },
  };
  return h;
}

/** Resolves with the next `event`, or rejects after `ms`: keeps "must NOT receive" tests honest and fast. */
export function nextEvent<E extends keyof ServerToClientEvents>(
  socket: ClientSocket,
  event: E,
  ms = 2000,
  filter: (...args: Parameters<ServerToClientEvents[E]>) => boolean = () => true,
): Promise<Parameters<ServerToClientEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener as never);
      reject(new Error(`no ${String(event)} within ${ms} ms`));
    }, ms);
    const listener = (...args: Parameters<ServerToClientEvents[E]>) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      socket.off(event, listener as never);
      resolve(args[0]);
    };
    socket.on(event, listener as never);
  });
}

/** Collects every `event` a socket receives, for asserting exactly-once delivery. */
export function collect<E extends keyof ServerToClientEvents>(socket: ClientSocket, event: E) {
  const seen: Parameters<ServerToClientEvents[E]>[0][] = [];
  socket.on(event, ((payload: Parameters<ServerToClientEvents[E]>[0]) => seen.push(payload)) as never);
  return seen;
}

export function waitForDisconnect(socket: ClientSocket, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!socket.connected) return resolve('already disconnected');
    const timer = setTimeout(() => reject(new Error(`socket still connected after ${ms} ms`)), ms);
    socket.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Re-evaluates `fn` until it returns `expected` (deep-equal), or fails with the last value after `ms`. */
export async function eventually<T>(fn: () => Promise<T> | T, expected: T, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) throw new Error(`expected ${JSON.stringify(expected)}, last saw ${JSON.stringify(last)}`);
    await sleep(100);
  }
}
export const uuid = () => randomUUID();

/** A staff member's HTTP calls: their session cookie on every request, and the CSRF token on every change. */
export function staffApi(h: Harness, s: StaffSession) {
  return {
    get: (path: string) => h.http.get(path).set('Cookie', s.cookie),
    post: (path: string, body: object = {}) => h.http.post(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf).send(body),
    put: (path: string, body: object) => h.http.put(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf).send(body),
    patch: (path: string, body: object) => h.http.patch(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf).send(body),
    delete: (path: string) => h.http.delete(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf),
  };
}

/** A second agency (Shelbyville, with a default group), to prove data never crosses agencies. */
export async function addOtherAgency(h: Harness): Promise<void> {
  const db = h.server.database.db;
  const [other] = await db
    .insert(agencies)
    .values({ slug: 'shelbyville', name: 'Shelbyville', widgetKey: 'shelbyville-key', casePrefix: 'SHB' })
    .returning();
  await db.insert(groups).values({ agencyId: other!.id, name: 'General', isDefault: true });
}
