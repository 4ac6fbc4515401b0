import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import request from 'supertest';
import twilio from 'twilio';
import { FakeTwilio } from '../support/fake-twilio.js';
import type { Handoff, Message, Partner } from '@casebridge/shared';
import { rowsOf } from '../../server/src/db/client.js';
import { EXCHANGE_PATH, H, newKeyPair, newNonce, requestPayload, signWith } from '../../server/src/modules/exchange/exchange.signing.js';
import { backends, eventually, nextEvent, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';

jest.setTimeout(90_000);

const SID = `AC${'b2'.repeat(16)}`;
const TOKEN = 'e1'.repeat(16);
const NUMBER = '+15550002222';
const TWILIO_BASE = 'https://cases.springfield.example';

/**
 * A TCP relay in front of a partner: it can be cut (an outage: connection refused) and restored on the same
 * port, and it keeps every byte that went through, so tests can check what crossed over.
 */
async function relay(targetPort: number) {
  let server: Server | undefined;
  const open = new Set<Socket>();
  const seen: Buffer[] = [];
  let port = 0;
  const up = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        open.add(client);
        const upstream = createConnection(targetPort);
        client.on('data', (d) => seen.push(Buffer.from(d)));
        client.pipe(upstream).pipe(client);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          open.delete(client);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      open.forEach((s) => s.destroy());
      server ? server.close(() => resolve()) : resolve();
    });
  await up();
  return { url: () => `http://127.0.0.1:${port}`, up, down, seen: () => Buffer.concat(seen).toString('utf8') };
}
import { createConnection } from 'node:net';

describe.each(backends())('Service Exchange between two instances on %s', (backend) => {
  let A: Harness; // City of Springfield: hands work over
  let B: Harness; // the partner agency: takes it
  let skewA = 0; // A's clock, moved forward to let offers lapse
  let toB: Awaited<ReturnType<typeof relay>>;
  let aAdmin: StaffSession, aAgent: StaffSession, bAdmin: StaffSession, bAgent: StaffSession;
  let partnerB: Partner; // B as registered at A
  let partnerA: Partner; // A as registered at B
  let fake: FakeTwilio; // Twilio for A's SMS thread

  const as = (h: Harness, s: StaffSession) => staffApi(h, s);
  const q = async <T>(h: Harness, text: ReturnType<typeof sql>) => rowsOf<T>(await h.server.database.db.execute(text));

  beforeAll(async () => {
    fake = (await FakeTwilio.start()).addAccount(SID, TOKEN);
    [A, B] = await Promise.all([
      startTestServer(backend, { now: () => new Date(Date.now() + skewA), env: { TWILIO_API_BASE_URL: fake.url } }),
      startTestServer(backend),
    ]);
    toB = await relay(new URL(B.url).port ? Number(new URL(B.url).port) : 80);
    [aAdmin, aAgent, bAdmin, bAgent] = await Promise.all([A.login('admin@demo.gov'), A.login('agent@demo.gov'), B.login('admin@demo.gov'), B.login('agent2@demo.gov')]);
    // A registers B (through the relay, so outages can be staged) with a manifest: name and language, the
    // title and the messages; never email, phone or custom fields.
    partnerB = (
      await as(A, aAdmin)
        .post('/api/exchange/partners', {
          name: 'County Benefits Office',
          baseUrl: toB.url(),
          manifest: { caseFields: ['title'], constituent: ['name', 'language'], timeline: ['public_messages'] },
          offerTimeoutSeconds: 300,
        })
        .expect(201)
    ).body;
    partnerA = (
      await as(B, bAdmin)
        .post('/api/exchange/partners', { name: 'City of Springfield', baseUrl: A.url, manifest: { caseFields: [], constituent: [], timeline: ['public_messages'] } })
        .expect(201)
    ).body;
    // Each side registers the other's public key.
    await as(A, aAdmin).post(`/api/exchange/partners/${partnerB.id}/their-keys`, { keyId: partnerA.ourKeys[0]!.keyId, publicKey: partnerA.ourKeys[0]!.publicKey }).expect(201);
    await as(B, bAdmin).post(`/api/exchange/partners/${partnerA.id}/their-keys`, { keyId: partnerB.ourKeys[0]!.keyId, publicKey: partnerB.ourKeys[0]!.publicKey }).expect(201);
  }, 90_000);
  afterAll(async () => {
    await toB?.down();
    await Promise.all([A?.close(), B?.close()]);
    await fake?.close();
  });

  /** A constituent starts a chat at A and Avery (agent@demo.gov) takes it. */
  async function liveChat(name: string, extra: Record<string, unknown> = {}) {
    const { token } = await A.widgetSession();
    const conv = await A.startConversation(token, { name, ...extra });
    await as(A, aAgent).post(`/api/conversations/${conv.id}/claim`).expect(200);
    return { token, conv };
  }
  /** Runs A's worker until `fn` gives `expected` (a pass may be skipped while another holds the worker's lock). */
  const tickUntil = <T>(fn: () => Promise<T>, expected: T) =>
    eventually(async () => {
      await A.server.app.services.exchange.tick();
      return fn();
    }, expected, 10_000);
  const statusAtA = async (id: string) => (await as(A, aAgent).get(`/api/conversations/${id}`)).body.status as string;
  const inbound = async (state?: string) =>
    (await as(B, bAgent).get(`/api/exchange/handoffs?direction=inbound${state ? `&state=${state}` : ''}`).expect(200)).body.handoffs as Handoff[];

  it('hands a live chat over: the widget keeps working, replies flow both ways, status mirrors, both sides audited', async () => {
    const { token, conv } = await liveChat('Pat Resident', {
      email: 'pat.secret@example.com',
      phone: '+1 555 010 9999',
      service: 'Benefits card',
      message: 'My benefits card never arrived',
    });
    const widget = await A.constituentSocket(token);
    const offered = await as(A, aAgent)
      .post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'Benefits card: their office issues it' })
      .expect(201);
    const handoffId = (offered.body as Handoff).id;

    // B: a linked case in its queue (its default group, by its own routing), showing where it came from.
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    const offer = (await inbound('offered')).find((h) => h.id === handoffId)!;
    expect(offer.partnerName).toBe('City of Springfield');
    expect(offer.remoteReference).toBe(conv.caseReference);
    expect(offer.groupName).toBe('General');
    expect(offer.caseReference).toMatch(/-\d{4}-\d{6}$/);
    // Contract: only what the manifest allows crossed over.
    expect(offer.shared?.constituent).toEqual({ name: 'Pat Resident', language: 'en' });
    expect(offer.shared).not.toHaveProperty('customFields');
    expect(offer.shared).not.toHaveProperty('priority');
    expect(offer.shared?.transcript?.map((t) => t.body)).toEqual(['My benefits card never arrived']);
    expect(toB.seen()).not.toContain('pat.secret@example.com');
    expect(toB.seen()).not.toContain('555 010 9999');
    const [bPerson] = await q<{ email: string | null; phone: string | null }>(B, sql`select c.email, c.phone from cases k join constituents c on c.id = k.constituent_id where k.id = ${offer.caseId}`);
    expect(bPerson).toEqual({ email: null, phone: null });

    // Written while the offer waits: it reaches B's agent too, once accepted.
    await A.http.post(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`).send({ clientMessageId: uuid(), body: 'Hello? Still waiting', visibility: 'public' }).expect(201);

    // B's agent accepts; the constituent is told plainly who is helping now, in the same widget.
    const told = nextEvent(widget, 'message:created', 15_000, (m) => m.body.includes('County Benefits Office is now helping you'));
    const accepted = (await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(200)).body as Handoff;
    expect(accepted.state).toBe('accepted');
    expect(accepted.conversationId).toBeTruthy();
    await told;
    // A keeps a read-only view: nobody here holds the conversation any more.
    await eventually(async () => (await as(A, aAgent).get(`/api/conversations/${conv.id}`)).body.assigneeId ?? null, null, 10_000);

    // B's agent sees the chat so far, and the constituent's next words.
    const bConv = accepted.conversationId!;
    const history = async () => ((await as(B, bAgent).get(`/api/conversations/${bConv}/messages`).expect(200)).body.messages as Message[]).map((m) => m.body);
    expect(await history()).toContain('My benefits card never arrived');
    await eventually(async () => (await history()).includes('Hello? Still waiting'), true, 15_000);
    const bSocket = await B.staffSocket(bAgent);
    const atB = nextEvent(bSocket, 'message:created', 15_000, (m) => m.conversationId === bConv && m.body === 'Is anyone there?');
    await A.http.post(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`).send({ clientMessageId: uuid(), body: 'Is anyone there?', visibility: 'public' }).expect(201);
    expect((await atB).author.kind).toBe('constituent');

    // B's reply reaches the widget at A; B's internal note does not.
    const reply = nextEvent(widget, 'message:created', 15_000, (m) => m.body.includes('A new card is on its way'));
    await as(B, bAgent).post(`/api/conversations/${bConv}/messages`, { clientMessageId: uuid(), body: 'Internal: checked the mail log', visibility: 'internal' }).expect(201);
    await as(B, bAgent).post(`/api/conversations/${bConv}/messages`, { clientMessageId: uuid(), body: 'A new card is on its way.', visibility: 'public' }).expect(201);
    expect((await reply).body).toBe('Jordan Agent (County Benefits Office): A new card is on its way.');
    const aMessages = (await A.http.get(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`).expect(200)).body.messages as Message[];
    expect(aMessages.some((m) => m.body.includes('checked the mail log'))).toBe(false);

    // Status mirrors: B resolves; A's linked case follows, and the timelines carry the handoff id.
    const aCaseId = (await as(A, aAgent).get(`/api/conversations/${conv.id}`)).body.caseId as string;
    const bCase = (await as(B, bAgent).get(`/api/cases/${accepted.caseId}`).expect(200)).body;
    await as(B, bAgent).patch(`/api/cases/${accepted.caseId}`, { status: 'resolved', version: bCase.version ?? bCase.case?.version }).expect(200);
    await eventually(async () => (await q<{ status: string }>(A, sql`select status from cases where id = ${aCaseId}`))[0]?.status, 'resolved', 15_000);

    // B ends the chat: the constituent's conversation at A ends too.
    await as(B, bAgent).post(`/api/conversations/${bConv}/end`).expect(200);
    await eventually(async () => (await q<{ status: string }>(A, sql`select status from conversations where id = ${conv.id}`))[0]?.status, 'ended', 15_000);

    const auditA = await q<{ action: string }>(A, sql`select action from audit_log where detail->>'handoffId' = ${handoffId} order by seq`);
    const auditB = await q<{ action: string }>(B, sql`select action from audit_log where detail->>'handoffId' = ${handoffId} order by seq`);
    expect(auditA.map((r) => r.action)).toEqual(expect.arrayContaining(['exchange.offer', 'exchange.accepted', 'exchange.status_mirror']));
    expect(auditB.map((r) => r.action)).toEqual(expect.arrayContaining(['exchange.receive', 'exchange.accept', 'exchange.status_sent']));
    const timelineA = await q<{ kind: string }>(A, sql`select kind from case_events where data->>'handoffId' = ${handoffId}`);
    const timelineB = await q<{ kind: string }>(B, sql`select kind from case_events where data->>'handoffId' = ${handoffId}`);
    expect(timelineA.map((r) => r.kind)).toEqual(expect.arrayContaining(['exchange.offered', 'exchange.accepted', 'exchange.status_mirrored']));
    expect(timelineB.map((r) => r.kind)).toEqual(expect.arrayContaining(['exchange.received', 'exchange.accepted']));
  });

  it('a declined chat goes back to the queue keeping its place and arrival time, with the reason', async () => {
    const first = await liveChat('First In Line');
    const { token: t2 } = await A.widgetSession();
    const second = await A.startConversation(t2, { name: 'Second In Line' });
    const [before] = await q<{ created_at: string }>(A, sql`select created_at::text from conversations where id = ${first.conv.id}`);
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: first.conv.id, note: 'Wrong office?' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    // Declining needs a reason: nothing changes without one.
    const bad = await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/decline`, { reason: ' ' }).expect(400);
    expect(bad.body.error.issues[0].path).toEqual(['reason']);
    await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/decline`, { reason: 'We only handle county benefits' }).expect(200);

    await eventually(async () => (await as(A, aAgent).get(`/api/conversations/${first.conv.id}`)).body.status, 'queued', 15_000);
    const [after] = await q<{ created_at: string }>(A, sql`select created_at::text from conversations where id = ${first.conv.id}`);
    expect(after!.created_at).toBe(before!.created_at);
    const queue = (await as(A, aAgent).get('/api/inbox?view=queue&limit=100').expect(200)).body.conversations as { id: string }[];
    const ids = queue.map((c) => c.id);
    expect(ids.indexOf(first.conv.id)).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf(first.conv.id)).toBeLessThan(ids.indexOf(second.id));
    const notes = (await as(A, aAgent).get(`/api/conversations/${first.conv.id}/messages`).expect(200)).body.messages as Message[];
    expect(notes.some((m) => m.visibility === 'internal' && m.body.includes('We only handle county benefits'))).toBe(true);
    const mine = (await as(A, aAgent).get(`/api/exchange/handoffs?conversationId=${first.conv.id}`).expect(200)).body.handoffs as Handoff[];
    expect(mine[0]).toMatchObject({ state: 'declined', reason: 'We only handle county benefits' });
  });

  it('an offer nobody answers in time comes back, and the partner’s pending case is withdrawn', async () => {
    const { conv } = await liveChat('Nobody Answers');
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'Please take this' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    skewA = 301_000; // A's clock passes the 300 s answer time
    try {
      await tickUntil(() => statusAtA(conv.id), 'queued');
    } finally {
      skewA = 0;
    }
    await eventually(async () => (await inbound()).find((h) => h.id === handoffId)?.state, 'expired', 15_000);
    const [bCase] = await q<{ status: string }>(B, sql`select k.status from exchange_handoffs h join cases k on k.id = h.case_id where h.handoff_id = ${handoffId}`);
    expect(bCase!.status).toBe('cancelled');
    await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(409);
  });

  it('a partner outage during the handoff loses nothing: the outbox delivers it once the partner is back', async () => {
    await toB.down();
    const { conv } = await liveChat('During The Outage');
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'Outage test' }).expect(201)).body as Handoff).id;
    try {
      await A.server.app.services.exchange.tick();
      const health = async () => (await as(A, aAdmin).get(`/api/exchange/partners/${partnerB.id}`).expect(200)).body as Partner;
      await eventually(async () => /unreachable/.test((await health()).lastError ?? ''), true, 10_000);
      expect((await health()).pending).toBeGreaterThanOrEqual(1);
      expect((await inbound()).some((h) => h.id === handoffId)).toBe(false);
    } finally {
      await toB.up();
    }
    await eventually(async () => (await inbound('offered')).filter((h) => h.id === handoffId).length, 1, 20_000);
    await eventually(async () => ((await as(A, aAdmin).get(`/api/exchange/partners/${partnerB.id}`)).body as Partner).pending, 0, 10_000);
    expect((await inbound()).filter((h) => h.id === handoffId)).toHaveLength(1);
  });

  describe('the inbound endpoint refuses what a registered partner did not sign', () => {
    // A key the test holds, registered at B as one of A's (a second active key: rotation without downtime).
    const testKey = newKeyPair();
    beforeAll(async () => {
      await as(B, bAdmin).post(`/api/exchange/partners/${partnerA.id}/their-keys`, { keyId: testKey.keyId, publicKey: testKey.publicKey }).expect(201);
    });
    const withdraw = (handoffId = randomUUID()) => JSON.stringify({ kind: 'withdraw', handoffId, seq: 1, data: { reason: 'test' } });
    const signed = (body: string, o: { keyId?: string; privateKey?: string; ts?: number; nonce?: string } = {}) => {
      const ev = JSON.parse(body) as { handoffId: string; seq: number };
      const ts = String(o.ts ?? Date.now());
      const nonce = o.nonce ?? newNonce();
      const idem = `${ev.handoffId}:${ev.seq}`;
      return {
        'content-type': 'application/json',
        [H.key]: o.keyId ?? testKey.keyId,
        [H.timestamp]: ts,
        [H.nonce]: nonce,
        [H.idempotency]: idem,
        [H.signature]: signWith(o.privateKey ?? testKey.privateKey, requestPayload('POST', EXCHANGE_PATH, ts, nonce, idem, body)),
      };
    };
    const post = (headers: Record<string, string>, body: string) => request(B.url).post(EXCHANGE_PATH).set(headers).send(body);
    const offer = (handoffId: string) =>
      JSON.stringify({
        kind: 'offer',
        handoffId,
        seq: 0,
        data: { handoffKind: 'case', serviceId: null, note: 'signed by the test', expiresAt: new Date(Date.now() + 600_000).toISOString(), shared: { reference: 'GEN-2026-999999', status: 'open', stage: 'intake' } },
      });
    const handoffsAtB = async () => Number((await q<{ n: number }>(B, sql`select count(*)::int as n from exchange_handoffs`))[0]!.n);

    it('refuses unsigned, forged, tampered, stale and replayed requests, and writes nothing', async () => {
      const count = await handoffsAtB();
      const body = offer(randomUUID());
      await post({ 'content-type': 'application/json' }, body).expect(401);
      const stranger = newKeyPair();
      await post(signed(body, { keyId: stranger.keyId, privateKey: stranger.privateKey }), body).expect(401); // unknown key
      await post(signed(body, { privateKey: stranger.privateKey }), body).expect(401); // forged: known key id, wrong signature
      await post(signed(body), body.replace('signed by the test', 'tampered after signing')).expect(401);
      await post(signed(body, { ts: Date.now() - 10 * 60_000 }), body).expect(401);
      expect(await handoffsAtB()).toBe(count);

      // Signed properly it is accepted once; the same request again is a replay.
      const headers = signed(body);
      const first = await post(headers, body).expect(200);
      expect(first.headers[H.signature]).toBeTruthy(); // the answer is signed too
      await post(headers, body).expect(401);
      // A retry (new nonce, same idempotency key) gets the same answer and creates nothing more.
      const retry = await post(signed(body), body).expect(200);
      expect(retry.body).toEqual(first.body);
      expect(await handoffsAtB()).toBe(count + 1);
      const refused = await q<{ n: number }>(B, sql`select count(*)::int as n from audit_log where action = 'exchange.inbound_refused'`);
      expect(refused[0]!.n).toBeGreaterThanOrEqual(6);
    });

    it('a signed but malformed event is refused with the field at fault, and changes nothing', async () => {
      const count = await handoffsAtB();
      const bad = JSON.stringify({ kind: 'offer', handoffId: randomUUID(), seq: 0, data: { handoffKind: 'case', serviceId: null, note: 'x', expiresAt: 'soon' } });
      const res = await post(signed(bad), bad).expect(400);
      expect(res.body.ok).toBe(false);
      expect(res.body.error.code).toBe('INVALID_PAYLOAD');
      expect(res.body.error.issues[0].path).toEqual(['data', 'shared']);
      // The idempotency key must be the event's own (handoff id and seq): a signed key cannot cover another event.
      const body = withdraw();
      const headers = { ...signed(body) };
      const other = JSON.stringify({ ...JSON.parse(body), seq: 7 });
      const resigned = signed(other);
      await post({ ...resigned, [H.idempotency]: headers[H.idempotency]!, [H.signature]: signWith(testKey.privateKey, requestPayload('POST', EXCHANGE_PATH, resigned[H.timestamp]!, resigned[H.nonce]!, headers[H.idempotency]!, other)) }, other).expect(400);
      expect(await handoffsAtB()).toBe(count);
    });

    it('refuses a revoked key and a revoked partner', async () => {
      const body = withdraw();
      await post(signed(body), body).expect(404); // signed and known: an unknown handoff, answered
      const extra = newKeyPair();
      await as(B, bAdmin).post(`/api/exchange/partners/${partnerA.id}/their-keys`, { keyId: extra.keyId, publicKey: extra.publicKey }).expect(201);
      await as(B, bAdmin).post(`/api/exchange/partners/${partnerA.id}/their-keys/${extra.keyId}/revoke`).expect(200);
      await post(signed(body, { keyId: extra.keyId, privateKey: extra.privateKey }), body).expect(401);
      await as(B, bAdmin).patch(`/api/exchange/partners/${partnerA.id}`, { status: 'revoked' }).expect(200);
      try {
        await post(signed(withdraw()), body).expect(401);
      } finally {
        await as(B, bAdmin).patch(`/api/exchange/partners/${partnerA.id}`, { status: 'active' }).expect(200);
      }
      // Changing the status changed nothing else (the manifest in particular).
      const after = (await as(B, bAdmin).get(`/api/exchange/partners/${partnerA.id}`).expect(200)).body as Partner;
      expect(after.manifest).toEqual(partnerA.manifest);
      expect(after.offerTimeoutSeconds).toBe(partnerA.offerTimeoutSeconds);
    });
  });

  it('an offer that lapses while the partner is down is never delivered; the work is back in the queue', async () => {
    await toB.down();
    let handoffId = '';
    const { conv } = await liveChat('Lapsed During Outage');
    try {
      handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'Never arrives' }).expect(201)).body as Handoff).id;
      await A.server.app.services.exchange.tick();
      skewA = 301_000;
      await tickUntil(() => statusAtA(conv.id), 'queued');
    } finally {
      skewA = 0;
      await toB.up();
    }
    await A.server.app.services.exchange.tick();
    await eventually(async () => ((await as(A, aAdmin).get(`/api/exchange/partners/${partnerB.id}`)).body as Partner).pending, 0, 10_000);
    expect((await inbound()).some((h) => h.id === handoffId)).toBe(false);
  });

  it('an accept that crosses the offer’s lapse: the partner’s side closes and says so, nothing is left half-open', async () => {
    const { conv } = await liveChat('Crossed Answers');
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'Race' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    await toB.down(); // A's withdrawal waits in its outbox while B accepts
    let accepted: Handoff;
    try {
      skewA = 301_000;
      await tickUntil(() => statusAtA(conv.id), 'queued');
      skewA = 0;
      accepted = (await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(200)).body as Handoff;
    } finally {
      skewA = 0;
      await toB.up();
    }
    await eventually(async () => (await inbound()).find((h) => h.id === handoffId)?.state, 'expired', 15_000);
    await eventually(async () => (await as(B, bAgent).get(`/api/conversations/${accepted.conversationId}`)).body.status, 'ended', 10_000);
    const notes = (await as(B, bAgent).get(`/api/conversations/${accepted.conversationId}/messages`).expect(200)).body.messages as Message[];
    expect(notes.some((m) => m.visibility === 'internal' && m.body.includes('withdrew this handoff'))).toBe(true);
    // A never handed it over: still its own, waiting in the queue, and nothing of B's reply path is open.
    const mine = (await as(A, aAgent).get(`/api/exchange/handoffs?conversationId=${conv.id}`).expect(200)).body.handoffs as Handoff[];
    expect(mine[0]!.state).toBe('expired');
  });

  it('a case handed over without a chat: linked both ways, status and stage mirror in both directions', async () => {
    const { conv } = await liveChat('Case Only');
    const aCaseId = (await as(A, aAgent).get(`/api/conversations/${conv.id}`)).body.caseId as string;
    // A case the agent cannot see is not found; a case and a conversation at once is refused, naming the field.
    await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, caseId: uuid(), note: 'x' }).expect(404);
    const both = await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, caseId: aCaseId, conversationId: conv.id, note: 'x' }).expect(400);
    expect(both.body.error.issues[0].path).toEqual(['conversationId']);
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, caseId: aCaseId, note: 'Case only' }).expect(201)).body as Handoff).id;
    // Offering the same work twice is refused while the first offer is open.
    await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, caseId: aCaseId, note: 'again' }).expect(409);
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    const accepted = (await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(200)).body as Handoff;
    expect(accepted.kind).toBe('case');
    expect(accepted.conversationId).toBeNull();
    // B moves the stage; A follows. A resolves; B follows.
    const bCase = (await as(B, bAgent).get(`/api/cases/${accepted.caseId}`).expect(200)).body;
    await as(B, bAgent).patch(`/api/cases/${accepted.caseId}`, { version: bCase.version, stage: 'review' }).expect(200);
    await eventually(async () => (await q<{ stage: string }>(A, sql`select stage from cases where id = ${aCaseId}`))[0]?.stage, 'review', 15_000);
    const aCase = (await as(A, aAgent).get(`/api/cases/${aCaseId}`).expect(200)).body;
    await as(A, aAgent).patch(`/api/cases/${aCaseId}`, { version: aCase.version, status: 'resolved' }).expect(200);
    await eventually(async () => (await q<{ status: string }>(B, sql`select status from cases where id = ${accepted.caseId}`))[0]?.status, 'resolved', 15_000);
    // Mirroring does not echo: each side recorded each change once.
    await A.server.app.services.exchange.tick();
    const mirroredAtB = await q<{ n: number }>(B, sql`select count(*)::int as n from case_events where kind = 'exchange.status_mirrored' and data->>'handoffId' = ${handoffId}`);
    const mirroredAtA = await q<{ n: number }>(A, sql`select count(*)::int as n from case_events where kind = 'exchange.status_mirrored' and data->>'handoffId' = ${handoffId}`);
    expect([mirroredAtA[0]!.n, mirroredAtB[0]!.n]).toEqual([1, 1]);
  });

  it('an SMS thread handed over: the partner’s replies go out by text, and the next text reaches the partner', async () => {
    await as(A, aAdmin).put('/api/admin/twilio', { accountSid: SID, authToken: TOKEN, publicBaseUrl: TWILIO_BASE, numbers: [NUMBER] }).expect(200);
    const from = '+15557770001';
    let n = 0;
    const text = (body: string) => {
      const params = { AccountSid: SID, MessageSid: `SM${(++n).toString(16).padStart(32, 'c')}`, From: from, To: NUMBER, Body: body };
      return A.http
        .post('/webhooks/twilio/sms')
        .type('form')
        .set('X-Twilio-Signature', twilio.getExpectedTwilioSignature(TOKEN, `${TWILIO_BASE}/webhooks/twilio/sms`, params))
        .send(params);
    };
    const agentSocket = await A.staffSocket(aAgent); // an agent who stays online keeps their work
    expect((await text('My benefits card, again')).status).toBeLessThan(300);
    let convId = '';
    await eventually(async () => {
      const queue = (await as(A, aAgent).get('/api/inbox?view=queue').expect(200)).body.conversations as { id: string; channel: string }[];
      convId = queue.find((c) => c.channel === 'sms')?.id ?? '';
      return Boolean(convId);
    }, true, 10_000);
    await as(A, aAgent).post(`/api/conversations/${convId}/claim`).expect(200);
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: convId, note: 'By text' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    const accepted = (await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(200)).body as Handoff;
    const sentTo = () => fake.sentMessages().filter((m) => m.To === from).map((m) => m.Body ?? '');
    await eventually(async () => sentTo().some((b) => b.includes('County Benefits Office is now helping you')), true, 15_000);
    await as(B, bAgent).post(`/api/conversations/${accepted.conversationId}/messages`, { clientMessageId: uuid(), body: 'We will text you when it ships.', visibility: 'public' }).expect(201);
    await eventually(async () => sentTo().includes('Jordan Agent (County Benefits Office): We will text you when it ships.'), true, 15_000).catch(async (err: Error) => {
      const outB = await q(B, sql`select seq, event->>'kind' as kind, attempts, sent_at, failed_at, last_error from exchange_outbox where handoff_id = ${handoffId}`);
      const msgsA = await q(A, sql`select author_kind, body, delivery_status from messages where conversation_id = ${convId} order by seq`);
      throw new Error(`${err.message}; texts sent: ${JSON.stringify(sentTo())} outbox B ${JSON.stringify(outB)} messages A ${JSON.stringify(msgsA)}`);
    });
    expect((await text('Thanks, my address changed though')).status).toBeLessThan(300);
    await eventually(
      async () => ((await as(B, bAgent).get(`/api/conversations/${accepted.conversationId}/messages`).expect(200)).body.messages as Message[]).some((m) => m.body === 'Thanks, my address changed though'),
      true,
      15_000,
    );
    // The socket stays open to the end: an agent whose last socket closes goes offline, and their unanswered
    // conversations go back to the queue (later tests hold some).
    expect(agentSocket.connected).toBe(true);
  });

  it('admins manage partners with clear errors; agents cannot', async () => {
    const bad = await as(A, aAdmin).post('/api/exchange/partners', { name: 'Evil', baseUrl: 'http://169.254.169.254' }).expect(400);
    expect(bad.body.error.issues[0].path).toEqual(['baseUrl']);
    await as(A, aAdmin).post('/api/exchange/partners', { name: 'Evil', baseUrl: 'https://partner.example/with/path' }).expect(400);
    const key = await as(A, aAdmin).post(`/api/exchange/partners/${partnerB.id}/their-keys`, { keyId: 'not-a-key-123', publicKey: '-----BEGIN PUBLIC KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PUBLIC KEY-----' }).expect(400);
    expect(key.body.error.issues[0].path).toEqual(['publicKey']);
    await as(A, aAgent).get('/api/exchange/partners').expect(403);
    await as(A, aAgent).post('/api/exchange/partners', { name: 'X', baseUrl: 'https://x.example' }).expect(403);
    const options = (await as(A, aAgent).get('/api/exchange/partners/options').expect(200)).body.partners;
    expect(options).toEqual([expect.objectContaining({ id: partnerB.id, name: 'County Benefits Office' })]);
    // An agent cannot hand over a conversation they cannot see; an offer without a note is refused.
    await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: uuid(), note: 'x' }).expect(404);
    const { conv } = await liveChat('Needs A Note');
    const noNote = await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: '' }).expect(400);
    expect(noNote.body.error.issues[0].path).toEqual(['note']);
    // Rotation: a new key is published as `next`, then promoted; the old one retires.
    const rotated = (await as(A, aAdmin).post(`/api/exchange/partners/${partnerB.id}/our-keys`).expect(201)).body as Partner;
    const next = rotated.ourKeys.find((k) => k.status === 'next')!;
    expect(next).toBeTruthy();
    await as(B, bAdmin).post(`/api/exchange/partners/${partnerA.id}/their-keys`, { keyId: next.keyId, publicKey: next.publicKey }).expect(201);
    const promoted = (await as(A, aAdmin).post(`/api/exchange/partners/${partnerB.id}/our-keys/${next.keyId}/promote`).expect(200)).body as Partner;
    expect(promoted.ourKeys.find((k) => k.keyId === next.keyId)!.status).toBe('active');
    // Calls keep working with the new key.
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'After rotation' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
  });
  it('an offer naming one of the partner’s services lands where the partner’s own routing sends that service', async () => {
    const [svc] = await q<{ id: string; title: string; case_type_id: string; prefix: string; group_name: string }>(
      B,
      sql`select s.id, s.title->>'en' as title, s.case_type_id, t.prefix, g.name as group_name from service_definitions s
        join case_types t on t.id = s.case_type_id join groups g on g.id = t.default_group_id
        where s.published and 'web' = any(s.channels) and g.name <> 'General' order by s.created_at limit 1`,
    );
    expect(svc).toBeTruthy();
    const expected = (await as(B, bAdmin).post('/api/admin/routing-rules/test', { serviceId: svc!.id, caseTypeId: svc!.case_type_id }).expect(200)).body as { groupName: string };
    // A lists the service for its agents; naming a service the partner does not accept is refused.
    await as(A, aAdmin).patch(`/api/exchange/partners/${partnerB.id}`, { services: [{ id: svc!.id, title: svc!.title }] }).expect(200);
    const { conv } = await liveChat('Needs A Service');
    const unknown = await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, serviceId: uuid(), note: 'x' }).expect(400);
    expect(unknown.body.error.issues[0].path).toEqual(['serviceId']);
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, serviceId: svc!.id, note: 'Yours' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await as(B, bAdmin).get('/api/exchange/handoffs?direction=inbound').expect(200)).body.handoffs.some((h: Handoff) => h.id === handoffId), true, 15_000);
    const offer = ((await as(B, bAdmin).get('/api/exchange/handoffs?direction=inbound').expect(200)).body.handoffs as Handoff[]).find((h) => h.id === handoffId)!;
    expect(offer.groupName).toBe(expected.groupName);
    expect(offer.caseReference!.startsWith(`${svc!.prefix}-`)).toBe(true);
    await as(B, bAdmin).get(`/api/cases/${offer.caseId}`).expect(200);
    await as(A, aAdmin).patch(`/api/exchange/partners/${partnerB.id}`, { services: [] }).expect(200);
  });

  it('only agents of the group the partner’s routing chose may answer an offer', async () => {
    const { token, conv } = await liveChat('Wrong Group');
    const handoffId = ((await as(A, aAgent).post('/api/exchange/handoffs', { partnerId: partnerB.id, conversationId: conv.id, note: 'Benefits only' }).expect(201)).body as Handoff).id;
    await eventually(async () => (await inbound('offered')).some((h) => h.id === handoffId), true, 15_000);
    // As if B's routing had chosen Benefits: Avery (General, Permits) cannot see it; Jordan (Benefits) can.
    await B.server.database.db.execute(sql`update exchange_handoffs set group_id = (select id from groups where name = 'Benefits') where handoff_id = ${handoffId}`);
    const bAvery = await B.login('agent@demo.gov');
    await as(B, bAvery).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(404);
    expect(((await as(B, bAvery).get('/api/exchange/handoffs?direction=inbound').expect(200)).body.handoffs as Handoff[]).some((h) => h.id === handoffId)).toBe(false);
    await as(B, bAdmin).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(403);
    // A constituent's widget token opens nothing here; an agent of A cannot answer A's own offer as if inbound.
    await A.http.get('/api/exchange/handoffs').set('Authorization', `Bearer ${token}`).expect(403);
    await as(A, aAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(404);
    // B's own manifest must let its replies cross back before a live chat can be taken.
    await as(B, bAdmin).patch(`/api/exchange/partners/${partnerA.id}`, { manifest: { caseFields: [], constituent: [], timeline: [] } }).expect(200);
    const refused = await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/accept`).expect(409);
    expect(refused.body.error.message).toMatch(/does not let messages cross/);
    await as(B, bAdmin).patch(`/api/exchange/partners/${partnerA.id}`, { manifest: partnerA.manifest }).expect(200);
    await as(B, bAgent).post(`/api/exchange/handoffs/${handoffId}/decline`, { reason: 'Test over' }).expect(200);
  });

  // Last: it spends this address's budget of audited refusals.
  it('a flood of unsigned calls is refused without a flood of audit rows', async () => {
    const count = async () => Number((await q<{ n: number }>(B, sql`select count(*)::int as n from audit_log where action = 'exchange.inbound_refused'`))[0]!.n);
    const before = await count();
    for (let i = 0; i < 130; i++) await request(B.url).post(EXCHANGE_PATH).send('{}').expect(401);
    const written = (await count()) - before;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThanOrEqual(100);
  });
});
