import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { backends, collect, sleep, startTestServer, uuid, type ClientSocket, type Harness, addOtherAgency } from '../support/harness.js';

describe.each(backends())('access control on %s', (backend) => {
  let h: Harness;
  let tokenA: string;
  let tokenB: string;
  let tokenX: string;
  let convA: string;
  let convB: string;
  let sockA: ClientSocket;

  beforeAll(async () => {
    h = await startTestServer(backend);
    // A second agency, to prove data never crosses agencies.
    await addOtherAgency(h);
    tokenA = (await h.widgetSession()).token;
    tokenB = (await h.widgetSession()).token;
    tokenX = (await h.widgetSession('shelbyville-key')).token;
    convA = (await h.startConversation(tokenA, { name: 'Ada' })).id;
    convB = (await h.startConversation(tokenB, { name: 'Bo' })).id;
    await h.startConversation(tokenX, { name: 'Xena' });
    sockA = await h.constituentSocket(tokenA);
  }, 60_000);
  afterAll(async () => h?.close());

  const asA = (req: import('supertest').Test) => req.set('Authorization', `Bearer ${tokenA}`);

  it("constituent A can never read or write constituent B's conversation over HTTP (404, nothing written)", async () => {
    expect((await asA(h.http.get(`/api/conversations/${convB}`))).status).toBe(404);
    expect((await asA(h.http.get(`/api/conversations/${convB}/messages`))).status).toBe(404);
    const send = await asA(h.http.post(`/api/conversations/${convB}/messages`)).send({ clientMessageId: uuid(), body: 'hi' });
    expect(send.status).toBe(404);
    expect(send.body.error.code).toBe('NOT_FOUND');
    expect((await asA(h.http.post(`/api/conversations/${convB}/end`))).status).toBe(404);
    const list = await asA(h.http.get('/api/conversations'));
    expect(list.body.conversations.map((c: { id: string }) => c.id)).toEqual([convA]);
    const bView = await h.http.get(`/api/conversations/${convB}/messages`).set('Authorization', `Bearer ${tokenB}`);
    expect(bView.body.messages).toEqual([]);
    expect((await h.http.get(`/api/conversations/${convB}`).set('Authorization', `Bearer ${tokenB}`)).body.status).toBe('queued');
  });

  it("constituent A can never read or write B's conversation over sockets, nor overhear it", async () => {
    const seen = collect(sockA, 'message:created');
    for (const [event, payload] of [
      ['conversation:sync', { conversationId: convB, afterSeq: 0 }],
      ['message:send', { conversationId: convB, clientMessageId: uuid(), body: 'hi' }],
      ['typing:set', { conversationId: convB, isTyping: true }],
      ['conversation:end', { conversationId: convB }],
    ] as const) {
      const ack = await (sockA.emitWithAck.bind(sockA) as (e: string, p: unknown) => Promise<unknown>)(event, payload);
      expect(ack).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    }
    expect(await sockA.emitWithAck('conversation:claim', { conversationId: convA })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN' },
    });
    const sockB = await h.constituentSocket(tokenB);
    await sockB.emitWithAck('message:send', { conversationId: convB, clientMessageId: uuid(), body: 'private to B' });
    await sleep(300);
    expect(seen).toEqual([]);
  });

  it("a constituent of another agency sees nothing of this agency's conversations", async () => {
    const x = h.http.get(`/api/conversations/${convA}`).set('Authorization', `Bearer ${tokenX}`);
    expect((await x).status).toBe(404);
    const sockX = await h.constituentSocket(tokenX);
    expect(await sockX.emitWithAck('conversation:sync', { conversationId: convA, afterSeq: 0 })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
  });

  it('staff see only their groups; admins see the agency read-only; nobody sees another agency', async () => {
    // Move B's conversation to the Benefits group: agent (General, Permits) loses sight of it, agent2 keeps it.
    await h.server.database.db.execute(
      sql`update conversations set group_id = (select id from groups where name = 'Benefits' and agency_id = conversations.agency_id) where id = ${convB}`,
    );
    const agent = await h.login('agent@demo.gov');
    const agent2 = await h.login('agent2@demo.gov');
    const admin = await h.login('admin@demo.gov');
    const get = (s: { cookie: string }, id: string) => h.http.get(`/api/conversations/${id}`).set('Cookie', s.cookie);
    expect((await get(agent, convB)).status).toBe(404);
    expect((await get(agent2, convB)).status).toBe(200);
    expect((await get(admin, convB)).status).toBe(200);
    const agentList = await h.http.get('/api/conversations').set('Cookie', agent.cookie);
    const ids = agentList.body.conversations.map((c: { id: string }) => c.id);
    expect(ids).toContain(convA);
    expect(ids).not.toContain(convB);
    const adminList = await h.http.get('/api/conversations').set('Cookie', admin.cookie);
    expect(adminList.body.conversations.every((c: { agencyId: string }) => c.agencyId === admin.me.agencyId)).toBe(true);
    expect(adminList.body.conversations).toHaveLength(2);

    const adminSend = await h.http
      .post(`/api/conversations/${convA}/messages`)
      .set('Cookie', admin.cookie)
      .set('x-csrf-token', admin.csrf)
      .send({ clientMessageId: uuid(), body: 'admin here' });
    expect(adminSend.status).toBe(403);

    // Over sockets as well: the agent's socket is not told about the Benefits conversation.
    const agentSock = await h.staffSocket(agent);
    const agentSeen = collect(agentSock, 'message:created');
    expect(await agentSock.emitWithAck('conversation:sync', { conversationId: convB, afterSeq: 0 })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    const sockB = await h.constituentSocket(tokenB);
    await sockB.emitWithAck('message:send', { conversationId: convB, clientMessageId: uuid(), body: 'benefits question' });
    await sleep(300);
    expect(agentSeen.filter((m) => m.conversationId === convB)).toEqual([]);
  });

  it('anonymous callers, forged and revoked widget tokens get 401', async () => {
    expect((await h.http.get('/api/conversations')).status).toBe(401);
    expect((await h.http.get(`/api/conversations/${convA}/messages`)).status).toBe(401);
    const forged = tokenA.slice(0, -4) + (tokenA.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await h.http.get('/api/conversations').set('Authorization', `Bearer ${forged}`)).status).toBe(401);
    await expect(h.constituentSocket(forged)).rejects.toThrow('UNAUTHENTICATED');
    const { token } = await h.widgetSession();
    const id = token.split('.')[1]!;
    await h.server.database.db.execute(sql`update widget_sessions set revoked_at = now() where id = ${id}`);
    expect((await h.http.get('/api/conversations').set('Authorization', `Bearer ${token}`)).status).toBe(401);
    expect((await h.http.get('/api/auth/me').set('Authorization', `Bearer ${tokenA}`)).status).toBe(401);
  });

  it('an unknown agency key is refused and creates nothing', async () => {
    const res = await h.http.post('/api/widget/session').send({ agencyKey: 'no-such-agency' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });
});
