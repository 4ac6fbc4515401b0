import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import type { QueuePosition } from '@casebridge/shared';
import { backends, collect, nextEvent, sleep, startTestServer, uuid, type Harness } from '../support/harness.js';

describe.each(backends())('widget server features on %s', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer(backend);
  }, 60_000);
  afterAll(async () => h?.close());

  it('says chat is unstaffed until an agent of the group is connected, and closed outside business hours', async () => {
    expect((await h.widgetSession()).availability).toEqual({ open: false, reason: 'no_agents', emailTranscript: false, textMe: false });
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const { token, availability } = await h.widgetSession();
    expect(availability).toEqual({ open: true, reason: null, emailTranscript: false, textMe: false });
    const db = h.server.database.db;
    // Open only on an hour that never comes.
    await db.execute(
      sql`update agencies set business_hours = ${JSON.stringify({ timezone: 'America/Chicago', days: { mon: [['00:00', '00:00']] } })}::jsonb`,
    );
    const closed = await h.http.get('/api/widget/availability').set('Authorization', `Bearer ${token}`);
    expect(closed.body).toEqual({ open: false, reason: 'closed', emailTranscript: false, textMe: false });
    await db.execute(sql`update agencies set business_hours = null`);
    agent.close();
  });

  it('an offline message becomes a case with a reference number that staff see in their queue', async () => {
    const { token } = await h.widgetSession();
    const res = await h.http
      .post('/api/widget/conversations')
      .set('Authorization', `Bearer ${token}`)
      .send({ name: 'Night Owl', email: 'owl@example.org', offline: true, message: 'Pothole on 5th street', clientMessageId: uuid() });
    expect(res.status).toBe(201);
    expect(res.body.conversation.caseReference).toMatch(/^SPR-\d{4}-\d{6}$/);
    const agent = await h.login('agent@demo.gov');
    const list = await h.http.get('/api/conversations?status=queued').set('Cookie', agent.cookie);
    expect(list.body.conversations.map((c: { id: string }) => c.id)).toContain(res.body.conversation.id);
  });

  it('queued constituents learn their place in line, and it moves when an agent takes one', async () => {
    // Empty the queue left by earlier tests.
    await h.server.database.db.execute(sql`update conversations set status = 'ended' where status <> 'ended'`);
    const people = [];
    for (let i = 0; i < 3; i++) {
      const { token } = await h.widgetSession();
      const socket = await h.constituentSocket(token);
      const positions = collect(socket, 'queue:position');
      const conv = await h.startConversation(token, { name: `Person ${i}` });
      people.push({ token, socket, positions, conv });
      await sleep(100);
    }
    await sleep(300);
    const latest = (p: { positions: QueuePosition[]; conv: { id: string } }) =>
      p.positions.filter((x) => x.conversationId === p.conv.id).at(-1);
    expect(people.map((p) => latest(p)?.position)).toEqual([1, 2, 3]);
    expect(latest(people[2]!)!.estimatedWaitSeconds).toBeGreaterThan(latest(people[0]!)!.estimatedWaitSeconds);

    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    expect(await agent.emitWithAck('conversation:claim', { conversationId: people[0]!.conv.id })).toMatchObject({ ok: true });
    await sleep(400);
    expect(latest(people[1]!)?.position).toBe(1);
    expect(latest(people[2]!)?.position).toBe(2);

    // Reconnecting while queued: the position arrives at once.
    let pos!: Promise<QueuePosition>;
    await h.constituentSocket(people[2]!.token, { before: (s) => (pos = nextEvent(s, 'queue:position', 3000)) });
    expect(await pos).toMatchObject({ conversationId: people[2]!.conv.id, position: 2 });
  });

  it('read receipts reach the other side and never run past the last message', async () => {
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'hello', clientMessageId: uuid() });
    const constituent = await h.constituentSocket(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'hi there' });
    const seen = nextEvent(agent, 'receipt:changed', 2000, (r) => r.conversationId === conv.id);
    expect(await constituent.emitWithAck('receipt:set', { conversationId: conv.id, readSeq: 99 })).toEqual({ ok: true, data: null });
    expect(await seen).toEqual({ conversationId: conv.id, by: 'constituent', deliveredSeq: 2, readSeq: 2 });
    const back = nextEvent(constituent, 'receipt:changed');
    await agent.emitWithAck('receipt:set', { conversationId: conv.id, deliveredSeq: 1 });
    expect(await back).toMatchObject({ by: 'agent', deliveredSeq: 1, readSeq: 0 });
  });

  it('the constituent rates an ended chat once, 1 to 5, and downloads a transcript without internal notes', async () => {
    const agentSession = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(agentSession);
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'Where is my permit?', clientMessageId: uuid() });
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'It ships Friday.' });
    await agent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'NOTE: permit was delayed by our error',
      visibility: 'internal',
    });
    const rate = (body: object) =>
      h.http.post(`/api/conversations/${conv.id}/rating`).set('Authorization', `Bearer ${token}`).send(body);
    expect((await rate({ score: 5 })).status).toBe(409); // not ended yet
    await agent.emitWithAck('conversation:end', { conversationId: conv.id });
    const bad = await rate({ score: 6 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['score']);
    expect((await rate({ score: 4, comment: 'Quick and kind' })).status).toBe(204);
    expect((await rate({ score: 1 })).status).toBe(409);

    const t = await h.http.get(`/api/conversations/${conv.id}/transcript`).set('Authorization', `Bearer ${token}`);
    expect(t.status).toBe(200);
    expect(t.headers['content-disposition']).toMatch(/attachment; filename="transcript-SPR-\d{4}-\d{6}\.txt"/);
    expect(t.text).toContain('You: Where is my permit?');
    expect(t.text).toContain('Avery Agent: It ships Friday.');
    expect(t.text).not.toContain('NOTE: permit was delayed');
    // Someone else's token gets nothing.
    const other = (await h.widgetSession()).token;
    expect((await h.http.get(`/api/conversations/${conv.id}/transcript`).set('Authorization', `Bearer ${other}`)).status).toBe(404);
  });
});
