import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { DEMO_AGENCY_KEY } from '../../server/src/db/seed-demo.js';
import { repoRoot } from '../support/process.js';
import { startTestServer, uuid, type Harness } from '../support/harness.js';

/**
 * Abuse limits (RELIABILITY.md §5.2-F) and security headers (§5.2-G). The limiter lives in memory on one node,
 * so these run on PGlite only: the database plays no part.
 */
jest.setTimeout(120_000);

type Ack = { ok: boolean; error?: { code: string; retryAfterMs?: number } };

describe('rate limits under a hostile client (default limits)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite');
  }, 60_000);
  afterAll(async () => h?.close());

  it('a flooding widget session is limited with retryAfterMs while another constituent sends with 0 errors', async () => {
    const hostile = (await h.widgetSession()).token;
    const benign = (await h.widgetSession()).token;
    const hc = await h.startConversation(hostile);
    const bc = await h.startConversation(benign);
    const hs = await h.constituentSocket(hostile);
    const hs2 = await h.constituentSocket(hostile); // a second socket does not buy a second budget
    const bs = await h.constituentSocket(benign);
    const flood = Array.from({ length: 80 }, (_, i) =>
      (i % 2 ? hs2 : hs).emitWithAck('message:send', { conversationId: hc.id, clientMessageId: uuid(), body: `spam ${i}` }) as Promise<Ack>,
    );
    // Over HTTP too, on the same budget.
    const httpFlood = Array.from({ length: 10 }, (_, i) =>
      h.http.post(`/api/conversations/${hc.id}/messages`).set('Authorization', `Bearer ${hostile}`).send({ clientMessageId: uuid(), body: `http spam ${i}` }),
    );
    const normal: Promise<Ack>[] = [];
    for (let i = 0; i < 10; i++) {
      normal.push(bs.emitWithAck('message:send', { conversationId: bc.id, clientMessageId: uuid(), body: `normal ${i}` }) as Promise<Ack>);
      await new Promise((r) => setTimeout(r, 20));
    }
    const [floodAcks, httpRes, normalAcks] = await Promise.all([Promise.all(flood), Promise.all(httpFlood), Promise.all(normal)]);
    const limited = floodAcks.filter((a) => !a.ok);
    expect(floodAcks.filter((a) => a.ok).length).toBeLessThanOrEqual(30);
    expect(limited.length).toBeGreaterThanOrEqual(50);
    expect(limited.every((a) => a.error?.code === 'RATE_LIMITED' && a.error.retryAfterMs! > 0 && a.error.retryAfterMs! <= 60_000)).toBe(true);
    expect(httpRes.every((r) => r.status === 429 && Number(r.headers['retry-after']) > 0 && r.body.error.code === 'RATE_LIMITED')).toBe(true);
    expect(normalAcks.filter((a) => !a.ok)).toEqual([]);
    const stored = await h.server.database.db.execute(sql`select count(*)::int as n from messages where conversation_id = ${hc.id}`);
    expect((stored as unknown as { rows: { n: number }[] }).rows[0]!.n).toBeLessThanOrEqual(30);
    // The hostile sockets stay connected (limited, not crashed), and the server keeps serving.
    expect(hs.connected && bs.connected).toBe(true);
    expect((await h.http.get('/api/health')).status).toBe(200);
  });

  it('conversation starts: 3 per widget session per hour; the limit says when to retry and others still start', async () => {
    const hostile = (await h.widgetSession()).token;
    const codes: number[] = [];
    let last: { status: number; headers: Record<string, string>; body: { error?: { code: string; retryAfterMs?: number } } } | undefined;
    for (let i = 0; i < 5; i++) {
      last = await h.http.post('/api/widget/conversations').set('Authorization', `Bearer ${hostile}`).send({ name: `Flood ${i}` });
      codes.push(last.status);
      if (last.status === 201) {
        await h.http.post(`/api/conversations/${(last.body as { conversation: { id: string } }).conversation.id}/end`).set('Authorization', `Bearer ${hostile}`);
      }
    }
    expect(codes).toEqual([201, 201, 201, 429, 429]);
    expect(last!.body.error).toMatchObject({ code: 'RATE_LIMITED' });
    expect(last!.body.error!.retryAfterMs).toBeGreaterThan(0);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    const other = (await h.widgetSession()).token;
    expect((await h.http.post('/api/widget/conversations').set('Authorization', `Bearer ${other}`).send({ name: 'Neighbour' })).status).toBe(201);
  });
});

describe('per-IP limits cannot be dodged with forged forwarding headers', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite', { limits: { widgetSessionsPerIp: { points: 5, duration: 60 } } });
  }, 60_000);
  afterAll(async () => h?.close());

  it('X-Forwarded-For, X-Real-IP and friends are ignored without a trusted proxy', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await h.http
        .post('/api/widget/session')
        .set('X-Forwarded-For', `203.0.113.${i}`)
        .set('X-Real-IP', `198.51.100.${i}`)
        .set('Forwarded', `for=192.0.2.${i}`)
        .set('X-User-ID', uuid())
        .send({ agencyKey: DEMO_AGENCY_KEY });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429, 429]);
  });
});

describe('security headers', () => {
  let h: Harness;
  beforeAll(async () => {
    // The console and the widget iframe are built pages: `npm test` builds them before the server tier runs.
    expect(existsSync(join(repoRoot, 'web/build/handler.js')) && existsSync(join(repoRoot, 'widget/dist/app/index.html'))).toBe(true);
    h = await startTestServer('pglite', { serveWeb: true });
    await h.server.database.db.execute(
      sql`update agencies set allowed_origins = '["https://city.example", "https://www.city.example"]'::jsonb where widget_key = ${DEMO_AGENCY_KEY}`,
    );
  }, 60_000);
  afterAll(async () => h?.close());

  const directives = (csp: string | undefined) =>
    Object.fromEntries((csp ?? '').split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([k, ...v]) => [k!, v]));

  it('console pages: CSP without framing, plugins or base-tag tricks; nosniff; referrer policy; no HSTS over http', async () => {
    for (const path of ['/console/login', '/portal']) {
      const res = await h.http.get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      const csp = directives(res.headers['content-security-policy']);
      expect({ path, fa: csp['frame-ancestors'], obj: csp['object-src'], base: csp['base-uri'] }).toEqual({
        path,
        fa: ["'none'"],
        obj: ["'none'"],
        base: ["'none'"],
      });
      expect(csp['script-src']).not.toContain("'unsafe-inline'");
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
      expect(res.headers['strict-transport-security']).toBeUndefined();
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('the widget iframe may be framed only by its agency’s allowed origins (and ours), never by anyone', async () => {
    const res = await h.http.get(`/widget/?agency=${DEMO_AGENCY_KEY}`);
    expect(res.status).toBe(200);
    const csp = directives(res.headers['content-security-policy']);
    expect(csp['frame-ancestors']).toEqual(expect.arrayContaining(['https://city.example', 'https://www.city.example', h.url]));
    expect(csp['frame-ancestors']).not.toContain('*');
    expect(csp['object-src']).toEqual(["'none'"]);
    expect(csp['base-uri']).toEqual(["'none'"]);
    expect(res.headers['x-frame-options']).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
    // An unknown or forged agency key gets our origins only; a key cannot smuggle in a directive.
    for (const key of ['no-such-agency', `${DEMO_AGENCY_KEY}; frame-ancestors *`, 'x%0d%0aX-Injected:%20yes']) {
      const other = await h.http.get(`/widget/?agency=${key}`);
      const fa = directives(other.headers['content-security-policy'])['frame-ancestors'];
      expect({ key, fa }).toEqual({ key, fa: expect.not.arrayContaining(['https://city.example', '*']) });
      expect(other.headers['x-injected']).toBeUndefined();
    }
  });

  it('every /api response, errors included, is no-store with a locked-down CSP', async () => {
    const { token } = await h.widgetSession();
    const staff = await h.login('agent@demo.gov');
    const responses: [string, import('supertest').Response][] = [
      ['health', await h.http.get('/api/health')],
      ['widget session', await h.http.post('/api/widget/session').send({ agencyKey: DEMO_AGENCY_KEY })],
      ['constituent list', await h.http.get('/api/conversations').set('Authorization', `Bearer ${token}`)],
      ['me', await h.http.get('/api/auth/me').set('Cookie', staff.cookie)],
      ['inbox', await h.http.get('/api/inbox').set('Cookie', staff.cookie)],
      ['unknown path', await h.http.get('/api/nope')],
      ['unauthenticated', await h.http.get('/api/conversations')],
      ['not found', await h.http.get(`/api/conversations/${uuid()}`).set('Cookie', staff.cookie)],
      ['failed login', await h.http.post('/api/auth/login').send({ email: 'agent@demo.gov', password: 'wrong-password' })],
      ['malformed JSON', await h.http.post('/api/auth/login').set('Content-Type', 'application/json').send('{"email":')],
    ];
    for (const [name, res] of responses) {
      const where = `${name} → ${res.status}`;
      expect({ where, cc: res.headers['cache-control'] }).toEqual({ where, cc: 'no-store' });
      expect({ where, csp: res.headers['content-security-policy'] }).toEqual({ where, csp: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'" });
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });
});

describe('over https', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite', { env: { PUBLIC_BASE_URL: 'https://cases.example.gov' } });
  }, 60_000);
  afterAll(async () => h?.close());

  it('HSTS for a year with subdomains, and a __Host- Secure session cookie', async () => {
    const res = await h.http.get('/api/health');
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const login = await h.http.post('/api/auth/login').send({ email: 'agent@demo.gov', password: 'test-demo-password-1' });
    const cookie = (login.headers['set-cookie'] as unknown as string[])[0]!;
    expect(cookie).toMatch(/^__Host-cb_session=/);
    expect(cookie).toMatch(/; Secure/i);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/Domain=/i);
    // The plain-http cookie name means nothing here.
    const value = cookie.split(';')[0]!.split('=')[1]!;
    expect((await h.http.get('/api/auth/me').set('Cookie', `cb_session=${value}`)).status).toBe(401);
    expect((await h.http.get('/api/auth/me').set('Cookie', `__Host-cb_session=${value}`)).status).toBe(200);
    // Cookie changes from a page on http:// of our own host are cross-origin.
    const evil = await h.http
      .put('/api/me/presence')
      .set('Cookie', `__Host-cb_session=${value}`)
      .set('x-csrf-token', login.body.csrfToken)
      .set('Origin', 'http://cases.example.gov')
      .send({ presence: 'away' });
    expect(evil.status).toBe(403);
  });
});
