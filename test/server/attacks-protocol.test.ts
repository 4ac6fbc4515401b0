import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { MAX_SOCKET_PAYLOAD_BYTES, PROTOCOL_VERSION } from '@casebridge/shared';
import { ENGINE_PATH, RawWs, rawEmitWithAck, rawSocketIo } from '../support/raw-ws.js';
import { startTestServer, uuid, type Harness } from '../support/harness.js';

/**
 * Hostile Socket.IO / engine.io / WebSocket clients (RELIABILITY.md §5.2-A), with raw frames a real client never
 * sends. After each: the connection is closed or the input ignored with a typed error, nothing is written, no
 * internal error is logged, and the server keeps serving (a fresh client connects and works, health is ok).
 * Transport-level only, so PGlite alone: the database backend plays no part in how frames are parsed.
 */
jest.setTimeout(60_000);

describe('hostile socket clients', () => {
  let h: Harness;
  let port: number;
  let token: string;
  let conv: string;
  const errors: string[] = [];
  const auth = () => ({ protocolVersion: PROTOCOL_VERSION, token });
  const messageCount = async () =>
    Number((await h.server.database.db.execute(sql`select count(*)::int as n from messages`) as unknown as { rows: { n: number }[] }).rows[0]!.n);

  beforeAll(async () => {
    h = await startTestServer('pglite', {
      env: { LOG_LEVEL: 'warn' },
      // Keep only error-level lines (50+): a hostile frame must never surface as an internal error.
      logSink: (line) => {
        if (Number((JSON.parse(line) as { level: number }).level) >= 50) errors.push(line);
      },
    });
    port = Number(new URL(h.url).port);
    token = (await h.widgetSession()).token;
    conv = (await h.startConversation(token, { message: 'first', clientMessageId: uuid() })).id;
  }, 60_000);
  afterEach(() => RawWs.destroyAll());
  afterAll(async () => h?.close());

  /** The server still serves: health is ok and a brand-new client connects, syncs and sends. */
  async function stillServing() {
    expect((await h.http.get('/api/health')).status).toBe(200);
    const s = await h.constituentSocket(token);
    expect(await s.emitWithAck('conversation:sync', { conversationId: conv, afterSeq: 0 })).toMatchObject({ ok: true });
    s.close();
  }

  it('A1: non-JSON text, truncated packets and invalid packet types close that connection only', async () => {
    const bystander = await rawSocketIo(port, auth());
    const before = await messageCount();
    const hostile: [string, string][] = [
      ['non-JSON text frame', 'hello, this is not engine.io'],
      ['truncated Socket.IO packet', '42["message:send",{"conv'],
      ['invalid engine.io packet type', '9'],
      ['invalid Socket.IO packet type', '49["x"]'],
      ['event packet that is not an array', '42{"message:send":1}'],
      ['event packet with a non-string event name', '42[42,{"a":1}]'],
      ['ack id that is not a number', '42abc["message:send",{}]'],
      ['empty frame', ''],
    ];
    for (const [name, frame] of hostile) {
      const ws = await rawSocketIo(port, auth());
      ws.text(frame);
      // Either closed, or the socket is still usable: never a hang or a crash.
      const outcome = await ws.closedWithin(1500).then(
        () => 'closed',
        async () => ((await rawEmitWithAck(ws, 1, `["conversation:sync",{"conversationId":"${conv}","afterSeq":0}]`)) as { ok: boolean }).ok ? 'ignored' : 'error',
      );
      expect({ name, outcome: outcome === 'closed' || outcome === 'ignored' }).toEqual({ name, outcome: true });
      ws.destroy();
    }
    expect(bystander.open).toBe(true);
    expect(await rawEmitWithAck(bystander, 7, `["conversation:sync",{"conversationId":"${conv}","afterSeq":0}]`)).toMatchObject({ ok: true });
    bystander.destroy();
    expect(await messageCount()).toBe(before);
    await stillServing();
  });

  it('A2: reserved bits, invalid UTF-8, unmasked client frames and a TCP reset mid-upgrade close cleanly', async () => {
    const rsv = await rawSocketIo(port, auth());
    rsv.frame(0x1, '42["typing:set",{}]', { rsv: 0b010 });
    expect(await rsv.closedWithin()).toBe(1002);

    const utf8 = await rawSocketIo(port, auth());
    utf8.frame(0x1, Buffer.from([0x34, 0x32, 0xff, 0xfe, 0xc3]));
    expect(await utf8.closedWithin()).toBe(1007);

    const unmasked = await rawSocketIo(port, auth());
    unmasked.frame(0x1, '42["typing:set",{}]', { mask: false });
    expect(await unmasked.closedWithin()).toBe(1002);

    const badOpcode = await rawSocketIo(port, auth());
    badOpcode.frame(0x3, 'x');
    expect(await badOpcode.closedWithin()).toBe(1002);

    // Half an upgrade request, then RST.
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write(`GET ${ENGINE_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgr`);
        setTimeout(() => {
          s.resetAndDestroy();
          resolve();
        }, 50);
      });
      s.on('error', () => undefined);
    });
    // And a reset right after a completed upgrade.
    (await rawSocketIo(port, auth())).reset();
    await stillServing();
  });

  it('A3: a binary packet declaring a million attachments, or a bogus placeholder, is refused and holds no memory', async () => {
    const rss = process.memoryUsage().rss;
    const many = await rawSocketIo(port, auth());
    many.text('451000000-["message:send",{"_placeholder":true,"num":0}]');
    await many.closedWithin();

    const splice = await rawSocketIo(port, auth());
    splice.text(`451-["message:send",{"conversationId":"${conv}","clientMessageId":"${uuid()}","body":{"_placeholder":true,"num":"splice"}}]`);
    splice.frame(0x2, Buffer.from([1, 2, 3]));
    // Refused either way: closed by the parser, or the ack-less packet ignored; nothing stored.
    await splice.closedWithin(1000).catch(() => undefined);
    splice.destroy();

    // Within the allowed count, binary data where a string is expected is a typed INVALID_PAYLOAD.
    const typed = await rawSocketIo(port, auth());
    typed.text(`451-2["message:send",{"conversationId":"${conv}","clientMessageId":"${uuid()}","body":{"_placeholder":true,"num":0}}]`);
    typed.frame(0x2, Buffer.from('binary body'));
    const ack = await typed.next((t) => t.startsWith('432['));
    expect(JSON.parse(ack.slice(3))[0]).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD', issues: [{ path: ['body'] }] } });
    typed.destroy();
    expect(process.memoryUsage().rss - rss).toBeLessThan(20 * 1024 * 1024);
    await stillServing();
  });

  it('A4: endless fragments are cut off at the frame limit; RSS stays bounded', async () => {
    // 70,000 one-byte continuation frames (FIN=0), built once before measuring.
    const ones = Buffer.alloc(70_000 * 7);
    for (let i = 0; i < 70_000; i++) ones.set([0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x61], i * 7);
    const rss = process.memoryUsage().rss;
    const ws = await rawSocketIo(port, auth());
    ws.frame(0x1, '4', { fin: false });
    const chunk = Buffer.alloc(1024, 0x61);
    // 100 x 1 KB continuation frames without FIN: more than the 64 KB message limit.
    for (let i = 0; i < 100 && ws.open; i++) ws.frame(0x0, chunk, { fin: false });
    expect(await ws.closedWithin()).toBe(1009);
    // Many tiny fragments on several connections, never completed: bounded by the same limit, then closed.
    const tiny = await Promise.all(Array.from({ length: 5 }, () => rawSocketIo(port, auth())));
    for (const t of tiny) {
      t.frame(0x1, '4', { fin: false });
      t.raw(ones);
    }
    // 1009 (too big) or 1008 (policy): either way, closed.
    for (const t of tiny) expect([1008, 1009]).toContain(await t.closedWithin(5000));
    expect(process.memoryUsage().rss - rss).toBeLessThan(20 * 1024 * 1024);
    await stillServing();
  });

  it('A5: oversized or malformed upgrade headers are refused fast; 2,000 headers are survived', async () => {
    const t0 = Date.now();
    await expect(RawWs.open(port, ENGINE_PATH, { 'x-big': 'a'.repeat(20_000) })).rejects.toThrow('HTTP/1.1 431');
    await expect(RawWs.open(port, ENGINE_PATH, { 'Sec-WebSocket-Protocol': ' '.repeat(15 * 1024) })).rejects.toThrow('HTTP/1.1 400');
    await expect(RawWs.open(port, ENGINE_PATH, { 'Sec-WebSocket-Protocol': ', , ,' })).rejects.toThrow('HTTP/1.1 400');
    expect(Date.now() - t0).toBeLessThan(1000);
    // Node keeps the first headers of a 2,000-header request and drops the rest: no crash, no slowdown.
    const many = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x-h${i}`, 'v']));
    const t1 = Date.now();
    const outcome = await RawWs.open(port, ENGINE_PATH, many).then(
      (ws) => (ws.destroy(), 'upgraded'),
      (err: Error) => err.message,
    );
    expect(outcome).toMatch(/upgraded|HTTP\/1\.1 4\d\d/);
    expect(Date.now() - t1).toBeLessThan(1000);
    // Long-polling is not offered at all (WebSocket only).
    const polling = await h.http.get('/socket.io/?EIO=4&transport=polling');
    expect(polling.status).toBe(400);
    await stillServing();
  });

  it('A6: one frame over the 64 KB limit closes that connection with 1009; nothing is stored', async () => {
    const before = await messageCount();
    const ws = await rawSocketIo(port, auth());
    ws.text(`421["message:send",{"conversationId":"${conv}","clientMessageId":"${uuid()}","body":"${'x'.repeat(MAX_SOCKET_PAYLOAD_BYTES)}"}]`);
    expect(await ws.closedWithin()).toBe(1009);
    expect(await messageCount()).toBe(before);
    await stillServing();
  });

  it('deep JSON nesting and __proto__ payloads get INVALID_PAYLOAD; no prototype is polluted', async () => {
    const ws = await rawSocketIo(port, auth());
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    expect(await rawEmitWithAck(ws, 1, `["message:send",${deep}]`)).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    expect(await rawEmitWithAck(ws, 2, `["conversation:sync",${deepObject}]`)).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    const proto = await rawEmitWithAck(
      ws,
      3,
      `["message:send",{"__proto__":{"polluted":true,"isAdmin":true},"conversationId":"${conv}","clientMessageId":"${uuid()}","body":"hi"}]`,
    );
    expect(proto).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    const ctor = await rawEmitWithAck(ws, 4, `["conversation:sync",{"constructor":{"prototype":{"polluted":true}},"conversationId":"${conv}","afterSeq":0}]`);
    expect(ctor).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    // The server runs in this process: its prototypes are ours.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(ws.open).toBe(true);
    ws.destroy();
    await stillServing();
  });

  it('A7: unknown and 10 kB event names get UNKNOWN_EVENT without echoing them; 20 strikes disconnect', async () => {
    const ws = await rawSocketIo(port, auth());
    const long = 'e'.repeat(10 * 1024);
    const ack = await rawEmitWithAck(ws, 1, `[${JSON.stringify(long)},{}]`);
    expect(ack).toEqual({ ok: false, error: { code: 'UNKNOWN_EVENT', message: 'Unknown event' } });
    for (const [i, name] of ['base', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'emit', 'join'].entries()) {
      expect(await rawEmitWithAck(ws, 10 + i, `[${JSON.stringify(name)},{}]`)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EVENT' } });
    }
    for (let i = 0; i < 20; i++) ws.text(`42["junk-${i}"]`);
    await ws.closedWithin();
    // Socket.IO's reserved event names are a protocol error: that connection is closed.
    for (const name of ['connect', 'disconnect', 'disconnecting', 'newListener', 'removeListener']) {
      const r = await rawSocketIo(port, auth());
      r.text(`421[${JSON.stringify(name)},{}]`);
      expect({ name, code: await r.closedWithin() }).toEqual({ name, code: 1005 });
      r.destroy();
    }
    await stillServing();
  });

  it('A8/A9: foreign origins and tokens in the query string are refused at the namespace connect', async () => {
    await expect(rawSocketIo(port, auth(), { Origin: 'https://evil.example' })).rejects.toThrow('ORIGIN_NOT_ALLOWED');
    await expect(rawSocketIo(port, auth(), {}, `${ENGINE_PATH}&token=${encodeURIComponent(token)}`)).rejects.toThrow('TOKEN_IN_QUERY');
    await expect(rawSocketIo(port, { protocolVersion: PROTOCOL_VERSION, token: 'x'.repeat(10_000) })).rejects.toThrow('UNAUTHENTICATED');
    await expect(rawSocketIo(port, { protocolVersion: PROTOCOL_VERSION, token: { $gt: '' } })).rejects.toThrow('UNAUTHENTICATED');
    await expect(rawSocketIo(port, { protocolVersion: '1' })).rejects.toThrow('PROTOCOL_MISMATCH');
    // A namespace that does not exist.
    const ws = await RawWs.open(port, ENGINE_PATH);
    await ws.next((t) => t.startsWith('0{'));
    ws.text(`40/admin,${JSON.stringify(auth())}`);
    expect(await ws.next((t) => t.startsWith('44/admin,'))).toContain('Invalid namespace');
    ws.destroy();
    await stillServing();
  });

  it('after all of it: no internal error was logged and the server still serves', async () => {
    await stillServing();
    expect(errors).toEqual([]);
  });
});
