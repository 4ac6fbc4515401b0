import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { DEMO_AGENCY_KEY } from '../../server/src/db/seed-demo.js';
import {
  addOtherAgency,
  backends,
  startTestServer,
  uuid,
  type ClientSocket,
  type Harness,
  type StaffSession,
  staffApi,
} from '../support/harness.js';

/**
 * Attacks through the front door (RELIABILITY.md §5.2-B/C/D/G): injection in every text field, forged, tampered
 * and expired credentials, CSRF on cookie routes and cross-origin socket handshakes. Each expects a clear 4xx or
 * a literal, inert copy of the input: never a 500, a database error, a split header or a changed record.
 */
jest.setTimeout(120_000);

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('png-bytes')]);

/** Stored and shown back exactly as typed. */
const CORPUS = [
  "'; DROP TABLE messages; --",
  "Robert'); DELETE FROM cases WHERE ('1'='1",
  "1' OR '1'='1",
  '1; SELECT pg_sleep(3)--',
  "'||(SELECT password_hash FROM users LIMIT 1)||'",
  '$$; DROP TABLE users; $$',
  '%_\\%',
  '<script>alert(document.cookie)</script>',
  '<img src=x onerror=alert(1)>',
  '<svg/onload=alert(1)>',
  '"><iframe srcdoc="<script>alert(1)</script>">',
  '[click](javascript:alert(1))',
  '\\u003cscript\\u003ealert(1)\\u003c/script\\u003e',
  '{{constructor.constructor("alert(1)")()}} ${7*7} #{7*7}',
  'Pat\r\nSet-Cookie: evil=1\r\nX-Injected: yes',
  '\u202egnp.exe \u200d\u200b',
  '../../../../etc/passwd',
  'e\u0301\u0301\u0301\u0301 \ud83d\ude00 日本語 العربية',
];

const rowsOf = <T>(r: unknown) => (r as { rows: T[] }).rows;

describe.each(backends())('attacks and bad input on %s', (backend) => {
  let h: Harness;
  let agent: StaffSession;
  let admin: StaffSession;
  let agentSock: ClientSocket;
  const errors: string[] = [];

  beforeAll(async () => {
    h = await startTestServer(backend, {
      limits: {
        widgetSessionsPerIp: { points: 10_000, duration: 60 },
        conversationsPerIp: { points: 10_000, duration: 3600 },
        messagesPerSession: { points: 10_000, duration: 60 },
        uploadsPerConstituent: { points: 1000, duration: 3600 },
      },
      env: { LOG_LEVEL: 'warn' },
      logSink: (line) => {
        if (Number((JSON.parse(line) as { level: number }).level) >= 50) errors.push(line);
      },
    });
    await addOtherAgency(h);
    agent = await h.login('agent@demo.gov');
    admin = await h.login('admin@demo.gov');
    agentSock = await h.staffSocket(agent);
  }, 60_000);
  afterAll(async () => h?.close());

  const count = async (table: 'messages' | 'conversations' | 'cases' | 'constituents') =>
    rowsOf<{ n: number }>(await h.server.database.db.execute(sql.raw(`select count(*)::int as n from ${table}`)))[0]!.n;

  it('injection corpus in names, messages, notes, transfer notes, case titles and search is stored literally and found literally', async () => {
    const api = staffApi(h, agent);
    const usersBefore = rowsOf<{ n: number }>(await h.server.database.db.execute(sql`select count(*)::int as n from users`))[0]!.n;
    for (const payload of CORPUS) {
      const t0 = Date.now();
      const { token } = await h.widgetSession();
      const start = await h.http
        .post('/api/widget/conversations')
        .set('Authorization', `Bearer ${token}`)
        .send({ name: payload.slice(0, 120), service: payload.slice(0, 200), message: payload, clientMessageId: uuid() });
      expect({ payload, status: start.status }).toEqual({ payload, status: 201 });
      const id = start.body.conversation.id as string;
      const sock = await h.constituentSocket(token);
      const ack = await sock.emitWithAck('message:send', { conversationId: id, clientMessageId: uuid(), body: `again: ${payload}` });
      expect(ack).toMatchObject({ ok: true });
      sock.close();
      expect((await api.post(`/api/conversations/${id}/claim`)).status).toBe(200);
      const note = await api.post(`/api/conversations/${id}/messages`, { clientMessageId: uuid(), body: `note: ${payload}`, visibility: 'internal' });
      expect(note.status).toBe(201);
      const transfer = await agentSock.emitWithAck('conversation:transfer', {
        conversationId: id,
        toGroupId: rowsOf<{ id: string }>(await h.server.database.db.execute(sql`select id from groups where name = 'Permits'`))[0]!.id,
        note: payload.slice(0, 1000),
      });
      expect(transfer).toMatchObject({ ok: true });

      // Read back exactly what was typed (after the trim every text field gets).
      const summary = await api.get(`/api/conversations/${id}`);
      expect(summary.body.constituentName).toBe(payload.slice(0, 120).trim());
      const msgs = (await api.get(`/api/conversations/${id}/messages`)).body.messages as { body: string }[];
      const bodies = msgs.map((m) => m.body);
      expect(bodies).toEqual(expect.arrayContaining([payload.trim(), `again: ${payload}`.trim(), `note: ${payload}`.trim()]));
      expect(bodies.some((b) => b.endsWith(`: ${payload.slice(0, 1000).trim()}`) && b.includes('transferred'))).toBe(true);
      const kase = await api.post('/api/cases', { title: payload.slice(0, 200), constituent: { name: payload.slice(0, 120) } });
      expect({ payload, status: kase.status }).toEqual({ payload, status: 201 });
      expect(kase.body.title).toBe(payload.slice(0, 200).trim());

      // Search treats the text as a literal: it finds this conversation and only conversations containing it.
      const search = await api.get(`/api/inbox?view=open&q=${encodeURIComponent(payload.slice(0, 200).trim())}`);
      expect({ payload, status: search.status }).toEqual({ payload, status: 200 });
      const found = search.body.conversations as { id: string; constituentName: string }[];
      expect(found.map((c) => c.id)).toContain(id);
      expect(Date.now() - t0).toBeLessThan(2500); // no pg_sleep ran
    }
    // A wildcard-only search matches only names or messages that contain the wildcard characters themselves.
    const wild = await staffApi(h, agent).get(`/api/inbox?view=open&q=${encodeURIComponent('%_')}&limit=200`);
    expect(wild.body.conversations.every((c: { constituentName: string }) => c.constituentName.includes('%_'))).toBe(true);
    // Nothing was dropped or changed by any of it.
    expect(rowsOf<{ n: number }>(await h.server.database.db.execute(sql`select count(*)::int as n from users`))[0]!.n).toBe(usersBefore);
    expect(await count('messages')).toBeGreaterThan(CORPUS.length * 3);
    expect(errors).toEqual([]);
  });

  it('NUL bytes in any text field are refused with INVALID_PAYLOAD naming the field, never a database error', async () => {
    const { token } = await h.widgetSession();
    const bearer = { Authorization: `Bearer ${token}` };
    const before = { conversations: await count('conversations'), cases: await count('cases') };
    const startNul = await h.http.post('/api/widget/conversations').set(bearer).send({ name: 'Pat\u0000Resident' });
    expect({ status: startNul.status, code: startNul.body.error?.code, path: startNul.body.error?.issues?.[0]?.path }).toEqual({
      status: 400,
      code: 'INVALID_PAYLOAD',
      path: ['name'],
    });
    const serviceNul = await h.http.post('/api/widget/conversations').set(bearer).send({ name: 'Pat', service: 'pot\u0000hole' });
    expect(serviceNul.body.error?.issues?.[0]?.path).toEqual(['service']);
    expect(await count('conversations')).toBe(before.conversations);

    const api = staffApi(h, agent);
    const caseNul = await api.post('/api/cases', { title: 'a\u0000b' });
    expect({ status: caseNul.status, path: caseNul.body.error?.issues?.[0]?.path }).toEqual({ status: 400, path: ['title'] });
    const nameNul = await api.post('/api/cases', { title: 'ok', constituent: { name: 'x\u0000' } });
    expect(nameNul.body.error?.issues?.[0]?.path).toEqual(['constituent', 'name']);
    expect(await count('cases')).toBe(before.cases);
    const searchNul = await api.get(`/api/inbox?q=${encodeURIComponent('a\u0000b')}`);
    expect({ status: searchNul.status, path: searchNul.body.error?.issues?.[0]?.path }).toEqual({ status: 400, path: ['q'] });
    const keyNul = await api.post('/api/cases', { title: 'ok', ['fie\u0000ld']: 1 });
    expect(keyNul.status).toBe(400);

    const conv = await h.startConversation(token);
    expect((await api.post(`/api/conversations/${conv.id}/claim`)).status).toBe(200);
    const transferNul = await agentSock.emitWithAck('conversation:transfer', {
      conversationId: conv.id,
      toGroupId: rowsOf<{ id: string }>(await h.server.database.db.execute(sql`select id from groups where name = 'Benefits'`))[0]!.id,
      note: 'handing over\u0000',
    });
    expect(transferNul).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD', issues: [{ path: ['note'] }] } });
    expect(errors).toEqual([]);
  });

  it('malformed ids in every path are a 4xx, never a database error', async () => {
    const api = staffApi(h, agent);
    const { token } = await h.widgetSession();
    const bad = ['not-a-uuid', "1' OR '1'='1", '%2e%2e%2f%2e%2e%2fetc%2fpasswd', '00000000-0000-0000-0000-00000000000g', '1;select pg_sleep(2)'];
    for (const id of bad) {
      const calls: [string, () => import('supertest').Test][] = [
        ['GET conversation', () => api.get(`/api/conversations/${id}`)],
        ['GET messages', () => api.get(`/api/conversations/${id}/messages`)],
        ['GET transcript', () => api.get(`/api/conversations/${id}/transcript`)],
        ['POST claim', () => api.post(`/api/conversations/${id}/claim`)],
        ['POST transfer', () => api.post(`/api/conversations/${id}/transfer`, { toGroupId: id })],
        ['GET case', () => api.get(`/api/cases/${id}`)],
        ['PATCH task', () => api.patch(`/api/cases/${id}/tasks/${id}`, { done: true })],
        ['GET attachment', () => api.get(`/api/attachments/${id}`)],
        ['POST retry text', () => api.post(`/api/messages/${id}/retry-delivery`)],
        ['PUT group', () => staffApi(h, admin).put(`/api/admin/groups/${id}`, { routing: 'manual' })],
        ['PUT presence', () => api.put(`/api/staff/${id}/presence`, { presence: 'away' })],
        ['POST disable', () => staffApi(h, admin).post(`/api/admin/users/${id}/disable`)],
        ['POST continue by text', () => h.http.post(`/api/conversations/${id}/text`).set('Authorization', `Bearer ${token}`).send({ phone: '+15555550100' })],
        ['GET portal case', () => h.http.get(`/api/portal/cases/${id}`)],
        ['GET report', () => staffApi(h, admin).get(`/api/reports?from=${id}&to=2026-01-01&groupId=${id}`)],
        ['GET inbox', () => api.get(`/api/inbox?groupId=${id}&caseTypeId=${id}&cursor=${id}`)],
      ];
      for (const [name, call] of calls) {
        const res = await call();
        expect({ id, name, ok: [400, 401, 403, 404].includes(res.status), code: res.body.error?.code }).toMatchObject({ id, name, ok: true });
      }
    }
    expect(errors).toEqual([]);
  });

  it('uploaded file names cannot traverse paths, split headers or smuggle a second filename', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const bearer = { Authorization: `Bearer ${token}` };
    const names = [
      '../../etc/passwd',
      '..\\..\\windows\\system32\\config.png',
      'a"; filename=evil.html',
      'photo\r\nSet-Cookie: evil=1\r\n.png',
      'nul\u0000byte.png',
      '\u202egnp.exe',
      'CON.txt',
      'x'.repeat(1000),
      '/absolute/path.png',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    ];
    for (const name of names) {
      const up = await h.http
        .post(`/api/conversations/${conv.id}/attachments`)
        .set(bearer)
        .set('Content-Type', 'application/octet-stream')
        .set('x-filename', encodeURIComponent(name))
        .send(PNG);
      expect({ name, status: up.status }).toEqual({ name, status: 201 });
      const stored = up.body.filename as string;
      expect({ name, stored: /[\\/"\r\n\u0000\u202e]/.test(stored) || stored.startsWith('.') || stored.length > 105 }).toEqual({ name, stored: false });
      expect(stored.endsWith('.png')).toBe(true);
      const dl = await h.http.get(`/api/attachments/${up.body.id}`).set(bearer);
      // Not yet sent: the uploader may fetch it. Headers are intact: one disposition, no injected header.
      expect(dl.status).toBe(200);
      expect(dl.headers['set-cookie']).toBeUndefined();
      expect(dl.headers['x-injected']).toBeUndefined();
      expect(dl.headers['content-disposition']).toMatch(/^attachment; filename="[^"]*"; filename\*=UTF-8''[^"\s;]+$/);
      expect(dl.headers['content-type']).toBe('image/png');
    }
    // A header that is not URL-encoded at all, or is invalid percent-encoding, still gets a safe name.
    const raw = await h.http
      .post(`/api/conversations/${conv.id}/attachments`)
      .set(bearer)
      .set('Content-Type', 'application/octet-stream')
      .set('x-filename', '%E0%A4%A')
      .send(PNG);
    expect(raw.status).toBe(201);
    expect(raw.body.filename).toBe('file.png');
  });

  it('forged, tampered, oversized and expired widget tokens get 401 over HTTP and at the socket handshake', async () => {
    const { token } = await h.widgetSession();
    await h.startConversation(token);
    const [, id, sig] = token.split('.') as [string, string, string];
    const other = (await h.widgetSession()).token;
    const forged = [
      '',
      'x',
      'x'.repeat(10 * 1024),
      `cbw1.${id}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`,
      `cbw1.${other.split('.')[1]}.${sig}`, // someone else's session id under this signature
      `cbw1.${id}.`,
      `cbw1.${id}`,
      `cbw2.${id}.${sig}`,
      `cbw1.${uuid()}.${sig}`,
      `${token}.extra`,
      `cbw1.${id.toUpperCase()}.${sig}`,
    ];
    for (const t of forged) {
      const res = await h.http.get('/api/conversations').set('Authorization', `Bearer ${t}`);
      expect({ t: t.slice(0, 60), status: res.status }).toEqual({ t: t.slice(0, 60), status: 401 });
      if (t) await expect(h.constituentSocket(t)).rejects.toThrow('UNAUTHENTICATED');
    }
    // Expired: the session row's expiry passed.
    await h.server.database.db.execute(sql`update widget_sessions set expires_at = now() - interval '1 second' where id = ${id}`);
    expect((await h.http.get('/api/conversations').set('Authorization', `Bearer ${token}`)).status).toBe(401);
    await expect(h.constituentSocket(token)).rejects.toThrow('UNAUTHENTICATED');
    // A widget token is not a staff credential, and a token sent as a cookie is ignored.
    expect((await h.http.get('/api/inbox').set('Authorization', `Bearer ${other}`)).status).toBe(403);
    expect((await h.http.get('/api/conversations').set('Cookie', `cb_session=${other}`)).status).toBe(401);
  });

  it('forged, expired and misnamed staff sessions get 401; a login never adopts a session id the client chose', async () => {
    const s = await h.login('agent2@demo.gov');
    const value = s.cookie.split('=')[1]!;
    for (const cookie of [
      'cb_session=',
      `cb_session=${value.slice(0, -2)}xx`,
      `cb_session=${'a'.repeat(10_000)}`,
      `__Host-cb_session=${value}`, // the https name on an http deployment
      `CB_SESSION=${value}`,
    ]) {
      expect({ cookie: cookie.slice(0, 40), status: (await h.http.get('/api/auth/me').set('Cookie', cookie)).status }).toEqual({
        cookie: cookie.slice(0, 40),
        status: 401,
      });
    }
    // The session cookie is not accepted as a bearer token either.
    expect((await h.http.get('/api/auth/me').set('Authorization', `Bearer ${value}`)).status).toBe(401);
    // Absolute expiry passed: refused over HTTP and at the socket handshake.
    const expired = await h.login('agent2@demo.gov');
    await h.server.database.db.execute(sql`update sessions set expires_at = now() - interval '1 second' where user_id = ${expired.me.id}`);
    expect((await h.http.get('/api/auth/me').set('Cookie', expired.cookie)).status).toBe(401);
    await expect(h.staffSocket(expired)).rejects.toThrow('UNAUTHENTICATED');
    // Session fixation: a cookie sent with the login is replaced, never kept.
    const fixed = 'cb_session=attacker-chosen-value-attacker-chosen-value';
    const login = await h.http.post('/api/auth/login').set('Cookie', fixed).send({ email: 'agent2@demo.gov', password: 'test-demo-password-1' });
    expect(login.status).toBe(200);
    expect((login.headers['set-cookie'] as unknown as string[])[0]).not.toContain('attacker-chosen-value');
    expect((await h.http.get('/api/auth/me').set('Cookie', fixed)).status).toBe(401);
  });

  it('CSRF: cookie-authenticated changes need this session’s x-csrf-token and no foreign Origin; nothing changes otherwise', async () => {
    const s = await h.login('agent@demo.gov');
    const otherSession = await h.login('agent2@demo.gov');
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const caseId = rowsOf<{ case_id: string }>(await h.server.database.db.execute(sql`select case_id from conversations where id = ${conv.id}`))[0]!.case_id;
    const state = async () =>
      rowsOf<{ s: string; a: string | null; v: number; n: number }>(
        await h.server.database.db.execute(
          sql`select c.status as s, c.assignee_id as a, k.version as v, (select count(*)::int from messages m where m.conversation_id = c.id) as n
              from conversations c join cases k on k.id = c.case_id where c.id = ${conv.id}`,
        ),
      )[0];
    const before = await state();
    const routes: [string, string, object | Buffer][] = [
      ['post', `/api/conversations/${conv.id}/claim`, {}],
      ['post', `/api/conversations/${conv.id}/messages`, { clientMessageId: uuid(), body: 'csrf', visibility: 'internal' }],
      ['post', `/api/conversations/${conv.id}/end`, {}],
      ['patch', `/api/cases/${caseId}`, { version: 1, priority: 'urgent' }],
      ['put', '/api/me/presence', { presence: 'away' }],
      ['post', `/api/admin/users/${otherSession.me.id}/disable`, {}],
      ['post', '/api/auth/logout', {}],
    ];
    const variants: [string, Record<string, string>][] = [
      ['no token', {}],
      ['wrong token', { 'x-csrf-token': 'wrong' }],
      ["another session's token", { 'x-csrf-token': otherSession.csrf }],
      ['evil origin', { 'x-csrf-token': s.csrf, Origin: 'https://evil.example' }],
      ['null origin', { 'x-csrf-token': s.csrf, Origin: 'null' }],
      ['look-alike origin', { 'x-csrf-token': s.csrf, Origin: `${h.url}.evil.example` }],
    ];
    for (const [method, path, body] of routes) {
      for (const [variant, headers] of variants) {
        const req = (h.http as unknown as Record<string, (p: string) => import('supertest').Test>)[method]!(path).set('Cookie', s.cookie);
        for (const [k, v] of Object.entries(headers)) req.set(k, v);
        const res = await req.send(body);
        expect({ method, path, variant, status: res.status, code: res.body.error?.code }).toEqual({
          method,
          path,
          variant,
          status: 403,
          code: 'CSRF_FAILED',
        });
      }
      // A cross-site HTML form: text/plain or urlencoded, no custom header possible.
      const form = await (h.http as unknown as Record<string, (p: string) => import('supertest').Test>)[method]!(path)
        .set('Cookie', s.cookie)
        .set('Content-Type', 'text/plain')
        .send('{"presence":"away"}');
      expect({ path, status: form.status }).toEqual({ path, status: 403 });
    }
    // Uploads are a cookie route too.
    const up = await h.http
      .post(`/api/conversations/${conv.id}/attachments`)
      .set('Cookie', s.cookie)
      .set('Content-Type', 'image/png')
      .set('Origin', 'https://evil.example')
      .set('x-csrf-token', s.csrf)
      .send(PNG);
    expect(up.status).toBe(403);
    expect(await state()).toEqual(before);
    expect((await h.http.get('/api/auth/me').set('Cookie', s.cookie)).body.presence).not.toBe('away');
    expect((await h.http.get('/api/auth/me').set('Cookie', otherSession.cookie)).status).toBe(200);
  });

  it('cross-origin socket handshakes: the console only from our origin, the widget only from its agency’s allowlist', async () => {
    await h.server.database.db.execute(sql`update agencies set allowed_origins = '["https://city.example"]'::jsonb where widget_key = ${DEMO_AGENCY_KEY}`);
    const s = await h.login('agent@demo.gov');
    const host = new URL(h.url).host;
    for (const origin of [
      'https://evil.example',
      'null',
      `http://${host}.evil.example`,
      `http://evil.example/${host}`,
      `https://${host}`,
      'http://localhost.evil.example',
      'https://city.example', // an agency's embedding site is not the console
    ]) {
      await expect(h.staffSocket(s, { origin })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    }
    const { token } = await h.widgetSession();
    const ok = await h.constituentSocket(token, { origin: 'https://city.example' });
    expect(ok.connected).toBe(true);
    ok.close();
    for (const origin of ['https://city.example.evil.com', 'https://evilcity.example', 'http://city.example', 'https://city.example:8443', 'null', 'https://CITY.example.', 'https://evil.example']) {
      await expect(h.constituentSocket(token, { origin })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    }
    // Shelbyville's constituents cannot come in through Springfield's allowed site.
    const x = (await h.widgetSession('shelbyville-key')).token;
    await expect(h.constituentSocket(x, { origin: 'https://city.example' })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    // Tokens only in the handshake `auth`, never in the URL, for staff as well.
    await expect(h.constituentSocket(token, { query: { token } })).rejects.toThrow('TOKEN_IN_QUERY');
    await expect(h.staffSocket(s, { query: { token: 'anything' } })).rejects.toThrow('TOKEN_IN_QUERY');
  });
});
