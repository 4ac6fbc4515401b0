import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { printFault } from './traffic.js';
import { randomUUID } from 'node:crypto';
import {
  createTestDatabase,
  staffApi,
  startTestServer,
  waitForDisconnect,
  type ClientSocket,
  type Harness,
} from '../support/harness.js';

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// F-11: access taken away from someone who is connected — on another node — while messages keep flowing.
describe('fault: access revoked while connected, across two nodes', () => {
  let db: { url: string; drop: () => Promise<void> };
  let a: Harness;
  let b: Harness;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A steady writer sends more than a constituent normally may: this test is about access, not rate limits.
    const limits = { messagesPerSession: { points: 10_000, duration: 60 } };
    a = await startTestServer('postgres', { databaseUrl: db.url, redisUrl: process.env.REDIS_URL, limits });
    b = await startTestServer('postgres', { databaseUrl: db.url, redisUrl: process.env.REDIS_URL, limits });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  /** A constituent on node A who keeps writing in a General conversation until stopped. */
  async function chatter() {
    const { token } = await a.widgetSession();
    const conv = await a.startConversation(token, { name: 'Steady Writer' });
    const socket = await a.constituentSocket(token);
    let on = true;
    const sentAt: number[] = [];
    const loop = (async () => {
      while (on) {
        const res = await socket.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: randomUUID(), body: `tick ${sentAt.length}` });
        if (res.ok) sentAt.push(Date.now());
        await sleep(200);
      }
    })();
    return { conv, sentAt, stop: async () => ((on = false), await loop) };
  }

  /** Times at which `socket` heard a message of `conversationId`. */
  function hearing(socket: ClientSocket, conversationId: string): number[] {
    const at: number[] = [];
    socket.on('message:created', (m) => {
      if (m.conversationId === conversationId) at.push(Date.now());
    });
    return at;
  }

  it("a colleague removed from a group stops hearing its conversations within 5 s and can no longer read them", async () => {
    const admin = await a.login('admin@demo.gov');
    const jordan = await b.login('agent2@demo.gov');
    const jordanSocket = await b.staffSocket(jordan);
    const groups = (await staffApi(a, admin).get('/api/admin/groups')).body.groups as { id: string; name: string }[];
    const benefits = groups.find((g) => g.name === 'Benefits')!.id;
    const talk = await chatter();
    const heard = hearing(jordanSocket, talk.conv.id);
    await sleep(1500);
    expect(heard.length).toBeGreaterThan(3);

    // Only admins may change access; bad groups name the field; nothing changes on refusal.
    expect((await staffApi(b, jordan).put(`/api/admin/users/${jordan.me.id}/access`, { role: 'agent', groupIds: [benefits] })).status).toBe(403);
    const bad = await staffApi(a, admin).put(`/api/admin/users/${jordan.me.id}/access`, { role: 'agent', groupIds: [benefits, randomUUID()] });
    expect([bad.status, bad.body.error.issues[0].path]).toEqual([400, ['groupIds', 1]]);

    const res = await staffApi(a, admin).put(`/api/admin/users/${jordan.me.id}/access`, { role: 'agent', groupIds: [benefits] });
    expect(res.status).toBe(200);
    const changedAt = Date.now();
    await sleep(6500);
    await talk.stop();
    const lastHeard = Math.max(...heard);
    const keptWriting = talk.sentAt.filter((t) => t > changedAt + 5000).length;
    printFault(`removed from General: last message heard ${lastHeard - changedAt} ms after the change; ${keptWriting} more sent after 5 s, none heard`);
    expect(lastHeard - changedAt).toBeLessThanOrEqual(5000);
    expect(keptWriting).toBeGreaterThan(5);
    expect(heard.filter((t) => t > changedAt + 5000)).toEqual([]);
    // The same open socket is refused the conversation at once.
    const sync = await jordanSocket.emitWithAck('conversation:sync', { conversationId: talk.conv.id, afterSeq: 0 });
    expect(sync).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    // Given back: it hears the group again without reconnecting.
    expect((await staffApi(a, admin).put(`/api/admin/users/${jordan.me.id}/access`, { role: 'agent', groupIds: [benefits, groups.find((g) => g.name === 'General')!.id] })).status).toBe(200);
    const again = await chatter();
    const heardAgain = hearing(jordanSocket, again.conv.id);
    await sleep(1500);
    await again.stop();
    expect(heardAgain.length).toBeGreaterThan(0);
  });

  it('a disabled account connected to the other node is cut off within 5 s', async () => {
    const admin = await a.login('admin@demo.gov');
    const avery = await b.login('agent@demo.gov');
    const socket = await b.staffSocket(avery);
    const talk = await chatter();
    const closed = waitForDisconnect(socket, 5000);
    const started = Date.now();
    expect((await staffApi(a, admin).post(`/api/admin/users/${avery.me.id}/disable`)).status).toBe(204);
    await closed;
    const ms = Date.now() - started;
    await talk.stop();
    printFault(`disabled on node A: socket on node B closed after ${ms} ms`);
    expect(ms).toBeLessThanOrEqual(5000);
    expect((await b.http.get('/api/inbox').set('Cookie', avery.cookie)).status).toBe(401);
  });
});
