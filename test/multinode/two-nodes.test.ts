import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import request from 'supertest';
import twilio from 'twilio';
import { FakeTwilio } from '../support/fake-twilio.js';
import { sql } from 'drizzle-orm';
import { deliveryIsNewer, type SendMessageResult } from '@casebridge/shared';
import {
  collect,
  createTestDatabase,
  eventually,
  nextEvent,
  sleep,
  startTestServer,
  uuid,
  waitForDisconnect,
  type Harness,
} from '../support/harness.js';

// Several servers sharing PostgreSQL and Redis: slower than the single-node tests.
jest.setTimeout(60_000);


/**
 * Two nodes on one fresh PostgreSQL database and the shared Redis, set up before and torn down after the
 * describe block; `extra` nodes started by a test on the same database are closed with them.
 */
function twoNodes(opts: { now?: () => Date; env?: () => Record<string, string> } = {}) {
  const nodes = { a: undefined as unknown as Harness, b: undefined as unknown as Harness, dbUrl: '', extra: [] as Harness[] };
  let drop: (() => Promise<void>) | undefined;
  const start = () => startTestServer('postgres', { databaseUrl: nodes.dbUrl, redisUrl: process.env.REDIS_URL, now: opts.now, env: opts.env?.() });
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    nodes.dbUrl = db.url;
    nodes.a = await start();
    nodes.b = await start();
  }, 60_000);
  afterAll(async () => {
    for (const n of [nodes.a, nodes.b, ...nodes.extra]) await n?.close();
    await drop?.();
  });
  const startAnother = async () => {
    const n = await start();
    nodes.extra.push(n);
    return n;
  };
  return { nodes, startAnother };
}

// Two CaseBridge nodes in one process, sharing PostgreSQL and fanning out through Redis.
describe('two nodes behind PostgreSQL and Redis', () => {
  const { nodes } = twoNodes();
  let a: Harness;
  let b: Harness;
  beforeAll(() => {
    ({ a, b } = nodes);
  });

  it('both nodes report redis fan-out and PostgreSQL', async () => {
    for (const n of [a, b]) {
      expect((await n.http.get('/api/health')).body).toMatchObject({ status: 'ok', database: 'postgres', realtime: 'redis' });
    }
  });

  it('a constituent on node A and an agent on node B chat live both ways', async () => {
    const agentSession = await b.login('agent@demo.gov');
    const agent = await b.staffSocket(agentSession);
    const { token } = await a.widgetSession();
    const created = nextEvent(agent, 'conversation:created');
    const conv = await a.startConversation(token);
    expect((await created).id).toBe(conv.id);
    const constituent = await a.constituentSocket(token);
    expect(await agent.emitWithAck('conversation:claim', { conversationId: conv.id })).toMatchObject({ ok: true });

    const atAgent = nextEvent(agent, 'message:created');
    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'from A' });
    expect((await atAgent).body).toBe('from A');
    // The constituent's own message also echoes to their other tabs; wait for the agent's.
    const atConstituent = nextEvent(constituent, 'message:created', 2000, (m) => m.author.kind === 'agent');
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'from B' });
    expect((await atConstituent).body).toBe('from B');
  });

  it('the same message retried on both nodes is stored and delivered once', async () => {
    const agent = await b.staffSocket(await b.login('agent@demo.gov'));
    const { token } = await a.widgetSession();
    const conv = await a.startConversation(token);
    const onA = await a.constituentSocket(token);
    const onB = await b.constituentSocket(token);
    const seen = collect(agent, 'message:created');
    const input = { conversationId: conv.id, clientMessageId: uuid(), body: 'sent twice' };
    const acks = await Promise.all([onA, onB, onA, onB].map((s) => s.emitWithAck('message:send', input)));
    const ids = new Set(acks.map((x) => (x as { ok: true; data: SendMessageResult }).data.message.id));
    expect(ids.size).toBe(1);
    await sleep(400);
    expect(seen.filter((m) => m.conversationId === conv.id)).toHaveLength(1);
  });

  it('racing "start chat" on both nodes makes one conversation; racing claims have one winner', async () => {
    const { token } = await a.widgetSession();
    const start = (n: Harness) =>
      request(n.url).post('/api/widget/conversations').set('Authorization', `Bearer ${token}`).send({ name: 'Race' });
    const res = await Promise.all([start(a), start(b), start(a), start(b)]);
    const ids = new Set(res.map((r) => r.body.conversation?.id));
    expect(res.every((r) => r.status === 200 || r.status === 201)).toBe(true);
    expect(ids.size).toBe(1);
    const conversationId = [...ids][0] as string;
    const s1 = await a.staffSocket(await a.login('agent@demo.gov'));
    const s2 = await b.staffSocket(await b.login('agent2@demo.gov'));
    const claims = await Promise.all([
      s1.emitWithAck('conversation:claim', { conversationId }),
      s2.emitWithAck('conversation:claim', { conversationId }),
    ]);
    expect(claims.filter((c) => c.ok)).toHaveLength(1);
  });

  it('a flooding widget session cannot double its message budget by spreading over both nodes', async () => {
    const { token } = await a.widgetSession();
    const conv = await a.startConversation(token, { name: 'Spreads Load' });
    const [onA, onB] = await Promise.all([a.constituentSocket(token), b.constituentSocket(token)]);
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? onB : onA).emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: `flood ${i}` }),
      ),
    );
    const ok = acks.filter((r) => r.ok).length;
    const limited = acks.filter((r) => !r.ok && r.error.code === 'RATE_LIMITED' && (r.error.retryAfterMs ?? 0) > 0).length;
    // One budget (30 a minute) shared through Redis, not 30 per node.
    expect(ok).toBeLessThanOrEqual(30);
    expect(ok + limited).toBe(50);
    const stored = await a.server.database.db.execute(sql`select count(*)::int as n from messages where conversation_id = ${conv.id} and author_kind = 'constituent'`);
    expect(Number((stored as unknown as { rows: { n: number }[] }).rows[0]!.n)).toBe(ok);
  });

  it('logging out on node A closes the same session\'s socket on node B within 5 s', async () => {
    const s = await a.login('supervisor@demo.gov');
    const socketOnB = await b.staffSocket(s);
    const closed = waitForDisconnect(socketOnB, 5000);
    const res = await request(a.url).post('/api/auth/logout').set('Cookie', s.cookie).set('x-csrf-token', s.csrf);
    expect(res.status).toBe(204);
    await closed;
  });
});

// SLA alerts are claimed in the database: however many nodes tick at once, and across a restart, each fires once.
describe('SLA timers on several nodes', () => {
  let now = new Date('2026-12-23T22:00:00Z');
  const { nodes, startAnother } = twoNodes({ now: () => now });
  let a: Harness;
  let b: Harness;
  beforeAll(() => {
    ({ a, b } = nodes);
  });

  const tick = (h: Harness) => (h.server.app.services.timers as { tick(): Promise<{ alerts: number }> }).tick();

  it('two nodes ticking together send each warning once; a node started after a restart sends the breach once', async () => {
    const sup = await b.login('supervisor@demo.gov');
    const supSocket = await b.staffSocket(sup);
    const alerts = collect(supSocket, 'sla:alert');
    const { token } = await a.widgetSession();
    const services = (await a.http.get('/api/widget/services').set('Authorization', `Bearer ${token}`)).body.services as { id: string; title: string }[];
    const conv = await a.startConversation(token, { name: 'Two Nodes', serviceId: services.find((s) => s.title === 'Report a pothole')!.id });
    const caseId = (await b.http.get(`/api/conversations/${conv.id}`).set('Cookie', sup.cookie)).body.caseId as string;
    const slaEvents = async () =>
      ((await b.http.get(`/api/cases/${caseId}`).set('Cookie', sup.cookie)).body.events as { kind: string }[]).filter((e) => e.kind.startsWith('sla.')).map((e) => e.kind);

    // Past the 75 % mark (45 of 60 minutes). While node A runs a pass (holds the timers' lock), node B's pass
    // does nothing at all: the jobs run on one node at a time.
    now = new Date('2026-12-23T22:50:00Z');
    const whileAHolds = await a.server.database.exclusive(724312, () => tick(b));
    expect(whileAHolds).toEqual({ alerts: 0, closed: 0, routed: 0, texts: 0 });
    expect(await slaEvents()).toEqual([]);
    // Then both nodes race, several times over.
    const results = await Promise.all([tick(a), tick(b), tick(a), tick(b)]);
    expect(results.reduce((n, r) => n + r.alerts, 0)).toBe(1);
    expect(await slaEvents()).toEqual(['sla.warning']);
    await sleep(300);
    expect(alerts.filter((x) => x.caseId === caseId)).toHaveLength(1);

    // Node A stops (its own sockets only: the supervisor on B stays connected); a new node starts on the same
    // database and finds the breach that came due meanwhile.
    await a.close();
    expect(supSocket.connected).toBe(true);
    now = new Date('2026-12-23T23:30:00Z');
    const c = await startAnother();
    const [fromC, fromB] = await Promise.all([tick(c), tick(b)]);
    expect(fromC.alerts + fromB.alerts).toBe(1);
    expect(await slaEvents()).toEqual(['sla.warning', 'sla.breached']);
    await eventually(() => alerts.filter((x) => x.caseId === caseId).map((x) => x.level), ['warning', 'breach'], 5000);
    await sleep(300);
    expect(alerts.filter((x) => x.caseId === caseId)).toHaveLength(2);
  });
});

// Automatic assignment on two nodes at once against one PostgreSQL: never two owners, never past capacity.
describe('routing on several nodes', () => {
  const { nodes } = twoNodes();
  let a: Harness;
  let b: Harness;
  beforeAll(() => {
    ({ a, b } = nodes);
  });

  it('racing arrivals and dispatches on both nodes give each agent exactly their capacity', async () => {
    const db = a.server.database.db;
    // Avery and Jordan take one chat each; Sam none.
    await db.execute(sql`update users set capacity = case email when 'supervisor@demo.gov' then 0 else 1 end`);
    const avery = await a.login('agent@demo.gov');
    const jordan = await b.login('agent2@demo.gov');
    await a.staffSocket(avery);
    await b.staffSocket(jordan);
    const admin = await a.login('admin@demo.gov');
    const groups = (await a.http.get('/api/admin/groups').set('Cookie', admin.cookie)).body.groups as { id: string; name: string }[];
    const general = groups.find((g) => g.name === 'General')!;
    await a.http.put(`/api/admin/groups/${general.id}`).set('Cookie', admin.cookie).set('x-csrf-token', admin.csrf).send({ routing: 'least_busy' }).expect(200);

    // Six constituents arrive at once, half on each node; then both nodes dispatch again, several times over.
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const node = i % 2 ? b : a;
        const { token } = await node.widgetSession();
        await node.startConversation(token, { name: `Racer ${i}` });
      }),
    );
    const router = (h: Harness) => h.server.app.services.router as { dispatch(groupId: string): Promise<number> };
    await Promise.all([router(a).dispatch(general.id), router(b).dispatch(general.id), router(a).dispatch(general.id), router(b).dispatch(general.id)]);
    await sleep(300);

    const rows = (await db.execute(sql`select assignee_id, status from conversations`)) as unknown as { rows: { assignee_id: string | null; status: string }[] };
    const active = rows.rows.filter((r) => r.status === 'active');
    expect(active).toHaveLength(2);
    expect(new Set(active.map((r) => r.assignee_id)).size).toBe(2);
    expect(rows.rows.filter((r) => r.status === 'queued')).toHaveLength(4);
    const routed = (await db.execute(
      sql`select count(*)::int as n from case_events where kind = 'conversation.assigned' and data->>'reason' = 'routed'`,
    )) as unknown as { rows: { n: number }[] };
    expect(routed.rows[0]!.n).toBe(2);
  });
});

// Twilio retries webhooks and may deliver each retry to a different node: every retry must be harmless.
describe('Twilio webhooks on several nodes', () => {
  const SID = `AC${'b2'.repeat(16)}`;
  const TOKEN = 'e1'.repeat(16);
  const NUMBER = '+15550009999';
  const BASE = 'https://cases.springfield.example';
  let fake: FakeTwilio;
  // Registered before the nodes start: they are told where the fake is.
  beforeAll(async () => {
    fake = (await FakeTwilio.start()).addAccount(SID, TOKEN);
  });
  const { nodes } = twoNodes({ env: () => ({ TWILIO_API_BASE_URL: fake.url }) });
  afterAll(async () => fake?.close());

  const post = (n: Harness, path: string, params: Record<string, string>) =>
    n.http
      .post(path)
      .type('form')
      .set('X-Twilio-Signature', twilio.getExpectedTwilioSignature(TOKEN, `${BASE}${path}`, params))
      .send(params);

  it('a retry storm of one text and of its status callbacks across both nodes makes one message, one send, one state', async () => {
    const { a, b } = nodes;
    const admin = await a.login('admin@demo.gov');
    const put = await a.http
      .put('/api/admin/twilio')
      .set('Cookie', admin.cookie)
      .set('x-csrf-token', admin.csrf)
      .send({ accountSid: SID, authToken: TOKEN, publicBaseUrl: BASE, numbers: [NUMBER] });
    expect(put.status).toBe(200);
    const from = '+15557770001';
    const inbound = { AccountSid: SID, MessageSid: `SM${'7'.repeat(32)}`, From: from, To: NUMBER, Body: 'Is the pool open?' };
    const storm = await Promise.all(Array.from({ length: 12 }, (_, i) => post(i % 2 ? b : a, '/webhooks/twilio/sms', inbound)));
    expect(storm.map((r) => r.status)).toEqual(Array(12).fill(200));
    const db = a.server.database.db;
    const count = async (q: ReturnType<typeof sql>) => Number(((await db.execute(q)) as unknown as { rows: { n: number }[] }).rows[0]!.n);
    expect(await count(sql`select count(*)::int as n from messages where external_id = ${inbound.MessageSid}`)).toBe(1);
    expect(await count(sql`select count(*)::int as n from conversations where channel = 'sms'`)).toBe(1);

    // An agent on node B answers; both nodes sweep for stalled texts at once: Twilio is asked once.
    const agent = await b.login('agent@demo.gov');
    const socket = await b.staffSocket(agent);
    const convId = ((await db.execute(sql`select id from conversations where channel = 'sms'`)) as unknown as { rows: { id: string }[] }).rows[0]!.id;
    expect(await socket.emitWithAck('conversation:claim', { conversationId: convId })).toMatchObject({ ok: true });
    const sent = await socket.emitWithAck('message:send', { conversationId: convId, clientMessageId: uuid(), body: 'Yes, until 8 pm.', visibility: 'public' });
    expect(sent).toMatchObject({ ok: true });
    await Promise.all([a.server.app.services.timers.tick(), b.server.app.services.timers.tick()]);
    await eventually(async () => fake.sentMessages().filter((m) => m.To === from).length, 1);
    const sid = await (async () => {
      for (let i = 0; i < 50; i++) {
        const rows = ((await db.execute(sql`select external_id as sid from messages where body = 'Yes, until 8 pm.'`)) as unknown as { rows: { sid: string | null }[] }).rows;
        if (rows[0]?.sid) return rows[0].sid;
        await sleep(100);
      }
      throw new Error('no MessageSid stored');
    })();
    const heard = collect(socket, 'message:delivery');
    const statuses = ['sent', 'delivered', 'sent', 'delivered', 'queued', 'delivered'];
    await Promise.all(
      statuses.map((MessageStatus, i) =>
        post(i % 2 ? a : b, '/webhooks/twilio/sms/status', { AccountSid: SID, MessageSid: sid, From: NUMBER, To: from, MessageStatus }),
      ),
    );
    expect(await count(sql`select count(*)::int as n from messages where external_id = ${sid} and delivery_status = 'delivered'`)).toBe(1);
    await sleep(500);
    // However the callbacks interleave, the console hears each state at most once and ends on delivered.
    const seen = heard.map((e) => e.delivery.status);
    expect(new Set(seen).size).toBe(seen.length);
    // Events from two nodes may cross on the way; a client keeping the newest (as the console does) ends on delivered.
    let shown: { status: (typeof seen)[number]; attempt: number } | undefined;
    for (const e of heard) if (deliveryIsNewer(shown, { status: e.delivery.status, attempt: e.attempt })) shown = { status: e.delivery.status, attempt: e.attempt };
    expect(shown?.status).toBe('delivered');
    expect(fake.sentMessages().filter((m) => m.To === from)).toHaveLength(1);
    socket.disconnect();
  });
});
