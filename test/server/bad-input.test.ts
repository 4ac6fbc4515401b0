import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { MAX_MESSAGE_LENGTH, MAX_SOCKET_PAYLOAD_BYTES } from '@casebridge/shared';
import { backends, startTestServer, uuid, waitForDisconnect, type ClientSocket, type Harness } from '../support/harness.js';

describe.each(backends())('bad input on %s', (backend) => {
  let h: Harness;
  let token: string;
  let conv: string;
  let sock: ClientSocket;
  const messageCount = async () => {
    const r = await h.server.database.db.execute(sql`select count(*)::int as n from messages`);
    return Number((r as unknown as { rows: { n: number }[] }).rows[0]!.n);
  };

  beforeAll(async () => {
    h = await startTestServer(backend);
    token = (await h.widgetSession()).token;
    conv = (await h.startConversation(token)).id;
    sock = await h.constituentSocket(token);
  }, 60_000);
  afterAll(async () => h?.close());

  const post = (body: unknown, id = conv) =>
    h.http.post(`/api/conversations/${id}/messages`).set('Authorization', `Bearer ${token}`).send(body as object);

  it('HTTP: every bad message gets a clear error naming the field, and nothing is stored', async () => {
    const before = await messageCount();
    const cases: [unknown, number, string, (string | number)[] | null][] = [
      [{ clientMessageId: uuid(), body: '' }, 400, 'INVALID_PAYLOAD', ['body']],
      [{ clientMessageId: uuid(), body: '   \n ' }, 400, 'INVALID_PAYLOAD', ['body']],
      [{ clientMessageId: uuid(), body: 'x'.repeat(MAX_MESSAGE_LENGTH + 1) }, 400, 'INVALID_PAYLOAD', ['body']],
      [{ clientMessageId: uuid(), body: 'nul \u0000 byte' }, 400, 'INVALID_PAYLOAD', ['body']],
      [{ clientMessageId: 'not-a-uuid', body: 'hi' }, 400, 'INVALID_PAYLOAD', ['clientMessageId']],
      [{ body: 'hi' }, 400, 'INVALID_PAYLOAD', ['clientMessageId']],
      [{ clientMessageId: uuid(), body: { $gt: '' } }, 400, 'INVALID_PAYLOAD', ['body']],
      [{ clientMessageId: uuid(), body: 'hi', isAdmin: true }, 400, 'INVALID_PAYLOAD', []],
      [{ clientMessageId: uuid(), body: 'hi', visibility: 'secret' }, 400, 'INVALID_PAYLOAD', ['visibility']],
    ];
    for (const [body, status, code, path] of cases) {
      const res = await post(body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status, code });
      if (path) expect(res.body.error.issues[0].path).toEqual(path);
    }
    const badId = await post({ clientMessageId: uuid(), body: 'hi' }, 'not-a-uuid');
    expect(badId.status).toBe(400);
    expect(badId.body.error.issues[0].path).toEqual(['conversationId']);
    const json = await h.http
      .post(`/api/conversations/${conv}/messages`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/json')
      .send('{"clientMessageId": ');
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe('INVALID_PAYLOAD');
    const huge = await post({ clientMessageId: uuid(), body: 'x'.repeat(70 * 1024) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(({}) as Record<string, unknown>).not.toHaveProperty('isAdmin');
    expect(await messageCount()).toBe(before);
  });

  it('HTTP: unknown API paths and query values get JSON errors', async () => {
    const res = await h.http.get('/api/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    const q = await h.http.get(`/api/conversations/${conv}/messages?afterSeq=-1`).set('Authorization', `Bearer ${token}`);
    expect(q.status).toBe(400);
    expect(q.body.error.issues[0].path).toEqual(['afterSeq']);
  });

  it('socket: malformed payloads get a typed INVALID_PAYLOAD ack naming the field, and write nothing', async () => {
    const before = await messageCount();
    const send = sock.emitWithAck.bind(sock) as (e: string, ...a: unknown[]) => Promise<unknown>;
    expect(await send('message:send', { conversationId: conv, clientMessageId: uuid(), body: '' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_PAYLOAD', issues: [{ path: ['body'] }] },
    });
    expect(await send('message:send', 'just a string')).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    expect(await send('message:send', null)).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    expect(await send('conversation:sync', { conversationId: conv, afterSeq: 'zero' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_PAYLOAD', issues: [{ path: ['afterSeq'] }] },
    });
    expect(await send('message:send', { conversationId: conv, clientMessageId: uuid(), body: 'a' }, 'extra')).toMatchObject({
      ok: false,
      error: { code: 'INVALID_PAYLOAD' },
    });
    // No ack callback at all: ignored, no crash.
    (sock.emit as (e: string, p: unknown) => void)('message:send', { conversationId: conv });
    expect(await messageCount()).toBe(before);
    expect(sock.connected).toBe(true);
  });

  it('socket: unknown events get UNKNOWN_EVENT without internals; a flood of them closes the socket', async () => {
    const s = await h.constituentSocket(token);
    const send = s.emitWithAck.bind(s) as (e: string, ...a: unknown[]) => Promise<unknown>;
    const ack = await send('__proto__', {});
    expect(ack).toEqual({ ok: false, error: { code: 'UNKNOWN_EVENT', message: 'Unknown event' } });
    expect(await send('constructor', {})).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EVENT' } });
    const closed = waitForDisconnect(s);
    for (let i = 0; i < 25; i++) (s.emit as (e: string) => void)(`junk-${i}`);
    await closed;
  });

  it('socket: a frame over 64 KB or a corrupt packet closes that socket only; the server keeps serving', async () => {
    const big = await h.constituentSocket(token);
    const closed = waitForDisconnect(big);
    (big.emit as (e: string, p: unknown) => void)('message:send', {
      conversationId: conv,
      clientMessageId: uuid(),
      body: 'x'.repeat(MAX_SOCKET_PAYLOAD_BYTES + 1),
    });
    await closed;

    const raw = await h.constituentSocket(token);
    const rawClosed = waitForDisconnect(raw);
    // A truncated Socket.IO packet straight onto the engine.
    (raw.io.engine as unknown as { write: (d: string) => void }).write('42["message:send",{"conv');
    await rawClosed;

    expect(sock.connected).toBe(true);
    expect((await h.http.get('/api/health')).status).toBe(200);
    expect(await sock.emitWithAck('conversation:sync', { conversationId: conv, afterSeq: 0 })).toMatchObject({ ok: true });
  });

  it('handshake: wrong protocol version, a token in the query string or a foreign origin are refused', async () => {
    await expect(h.constituentSocket(token, { auth: { protocolVersion: 999 } })).rejects.toThrow('PROTOCOL_MISMATCH');
    await expect(h.constituentSocket(token, { query: { token } })).rejects.toThrow('TOKEN_IN_QUERY');
    await expect(h.constituentSocket(token, { origin: 'https://evil.example' })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    await expect(h.constituentSocket(token, { origin: 'http://localhost:3000.evil.example' })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    const staff = await h.login('agent@demo.gov');
    await expect(h.staffSocket(staff, { origin: 'https://evil.example' })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    await expect(h.staffSocket(staff, { origin: 'null' })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
  });

  it('widget start: bad pre-chat input names the field and creates nothing', async () => {
    const { token: t } = await h.widgetSession();
    const start = (body: object) => h.http.post('/api/widget/conversations').set('Authorization', `Bearer ${t}`).send(body);
    expect((await start({ name: '' })).body.error.issues[0].path).toEqual(['name']);
    expect((await start({ name: 'Al', email: 'nope' })).body.error.issues[0].path).toEqual(['email']);
    expect((await start({ name: 'Al', phone: 'call me' })).body.error.issues[0].path).toEqual(['phone']);
    expect((await start({ name: 'Al', language: 'fr' })).body.error.issues[0].path).toEqual(['language']);
    const list = await h.http.get('/api/conversations').set('Authorization', `Bearer ${t}`);
    expect(list.body.conversations).toEqual([]);
    expect((await h.http.post('/api/widget/session').send({})).body.error.issues[0].path).toEqual(['agencyKey']);
  });
});
