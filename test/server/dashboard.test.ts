import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Dashboard } from '@casebridge/shared';
import { backends, collect, eventually, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';

// The supervisor's dashboard: per-group queues and agents, today's figures, and stepping in.
describe.each(backends())('the supervisor dashboard on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let avery: StaffSession;
  let sam: StaffSession;

  beforeAll(async () => {
    h = await startTestServer(backend);
    [admin, avery, sam] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov'), h.login('supervisor@demo.gov')]);
  }, 60_000);
  afterAll(async () => h?.close());
  const as = (s: StaffSession) => staffApi(h, s);

  it('is for supervisors and admins only, each seeing their own groups', async () => {
    expect((await as(avery).get('/api/dashboard')).status).toBe(403);
    expect((await h.http.get('/api/dashboard')).status).toBe(401);
    const mine = (await as(sam).get('/api/dashboard')).body as Dashboard;
    expect(mine.groups.map((g) => g.name)).toEqual(['Benefits', 'General', 'Permits']);
    expect(((await as(admin).get('/api/dashboard')).body as Dashboard).groups).toHaveLength(3);
  });

  it('counts who waits and for how long, who works and how loaded, and today’s figures', async () => {
    await h.staffSocket(avery);
    const start = async (name: string) => {
      const { token } = await h.widgetSession();
      return { token, conv: await h.startConversation(token, { name }) };
    };
    const served = await start('Served');
    await start('Waiting');
    const gaveUp = await start('Gave up');
    const agent = await h.staffSocket(avery);
    await agent.emitWithAck('conversation:claim', { conversationId: served.conv.id });
    await agent.emitWithAck('message:send', { conversationId: served.conv.id, clientMessageId: uuid(), body: 'Hi, how can I help?' });
    // The constituent who gave up ends the chat before anyone took it.
    await h.http.post(`/api/conversations/${gaveUp.conv.id}/end`).set('Authorization', `Bearer ${gaveUp.token}`).expect(200);
    await h.http.post(`/api/conversations/${served.conv.id}/end`).set('Authorization', `Bearer ${served.token}`).expect(200);
    await h.http
      .post(`/api/conversations/${served.conv.id}/rating`)
      .set('Authorization', `Bearer ${served.token}`)
      .send({ score: 4 })
      .expect((r) => expect(r.status).toBeLessThan(300));

    const d = (await as(sam).get('/api/dashboard')).body as Dashboard;
    const general = d.groups.find((g) => g.name === 'General')!;
    expect(general).toMatchObject({ waiting: 1, active: 0, slaAtRisk: 0, slaBreached: 0 });
    expect(general.longestWaitSeconds).toBeGreaterThanOrEqual(0);
    expect(general.averageWaitTodaySeconds).not.toBeNull();
    expect(general.agents.find((a) => a.name === 'Avery Agent')).toMatchObject({ presence: 'available', load: 0 });
    expect(d.today).toMatchObject({ conversations: 3, abandoned: 1, byChannel: [{ key: 'web', count: 3 }] });
    expect(d.today.firstResponseMedianSeconds).not.toBeNull();
    expect(d.today).toMatchObject({ satisfaction: 4, ratings: 1 });
  });

  it('reports per group and per agent over a date range, as JSON and as CSV', async () => {
    const today = new Date().toISOString().slice(0, 10);
    expect((await as(avery).get(`/api/reports?from=${today}&to=${today}`)).status).toBe(403);
    for (const [query, at] of [
      ['from=yesterday&to=2026-01-01', ['from']],
      [`from=${today}&to=2000-01-01`, ['from']],
      [`from=2020-01-01&to=${today}`, ['to']],
    ] as const) {
      const res = await as(sam).get(`/api/reports?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.error.issues[0].path).toEqual(at);
    }
    expect((await as(sam).get(`/api/reports?from=${today}&to=${today}&groupId=${uuid()}`)).status).toBe(404);

    const report = (await as(sam).get(`/api/reports?from=${today}&to=${today}`)).body as { rows: Record<string, unknown>[] };
    const general = report.rows.find((r) => r.kind === 'group' && r.name === 'General')!;
    expect(general).toMatchObject({ conversations: 3, abandoned: 1, satisfaction: 4, ratings: 1 });
    expect(general.firstResponseMedian).not.toBeNull();
    expect(report.rows.find((r) => r.kind === 'agent' && r.name === 'Avery Agent')).toMatchObject({ conversations: 1, ratings: 1 });

    const csv = await as(sam).get(`/api/reports?from=${today}&to=${today}&format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toMatch(/^Kind,Name,Conversations,Abandoned,First response median/);
    expect(lines).toContain(lines.find((l) => l.startsWith('group,General,3,1,')));
  });

  it('lets a supervisor change an agent’s status, only within their groups', async () => {
    const staff = (await as(sam).get('/api/staff')).body.staff as { id: string; displayName: string }[];
    const averyId = staff.find((s) => s.displayName === 'Avery Agent')!.id;
    const adminId = staff.find((s) => s.displayName === 'Alex Admin')!.id;
    expect((await as(avery).put(`/api/staff/${averyId}/presence`, { presence: 'away' })).status).toBe(403);
    expect((await as(sam).put(`/api/staff/${adminId}/presence`, { presence: 'away' })).status).toBe(404);
    const bad = await as(sam).put(`/api/staff/${averyId}/presence`, { presence: 'asleep' });
    expect(bad.body.error.issues[0].path).toEqual(['presence']);
    await as(sam).put(`/api/staff/${averyId}/presence`, { presence: 'away' }).expect(200);
    await eventually(
      async () => ((await as(sam).get('/api/dashboard')).body as Dashboard).groups.find((g) => g.name === 'General')!.agents.find((a) => a.name === 'Avery Agent')!.presence,
      'away',
    );
  });
});

describe.each(backends())('a supervisor steps in on %s', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer(backend);
  }, 60_000);
  afterAll(async () => h?.close());

  it('whispers to the agent (never to the constituent), then takes the conversation over', async () => {
    const [avery, sam] = await Promise.all([h.login('agent@demo.gov'), h.login('supervisor@demo.gov')]);
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Watched' });
    const agent = await h.staffSocket(avery);
    const whispers = collect(agent, 'mention:created');
    const constituent = await h.constituentSocket(token);
    const heard = collect(constituent, 'message:created');
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    const sup = await h.staffSocket(sam);
    const note = await sup.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'Offer the fee waiver form',
      visibility: 'internal',
    });
    expect(note).toMatchObject({ ok: true });
    await eventually(() => whispers.map((w) => [w.byName, w.whisper, w.preview]), [['Sam Supervisor', true, 'Offer the fee waiver form']]);
    await new Promise((r) => setTimeout(r, 200));
    expect(heard.map((m) => m.body)).not.toContain('Offer the fee waiver form');

    // A colleague who is not handling it cannot reply in public; the supervisor joins, and then can.
    const jordan = await h.staffSocket(await h.login('agent2@demo.gov'));
    const sneak = await jordan.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Hi from Jordan' });
    expect(sneak).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect((await staffApi(h, avery).post(`/api/conversations/${conv.id}/join`)).status).toBe(403);
    await staffApi(h, sam).post(`/api/conversations/${conv.id}/join`).expect(200);
    await eventually(() => heard.map((m) => m.body).includes('Sam Supervisor (supervisor) joined the conversation.'), true);
    const joined = await sup.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'I can help with the waiver' });
    expect(joined).toMatchObject({ ok: true });
    await eventually(() => heard.map((m) => m.body).includes('I can help with the waiver'), true);

    // Take over: the conversation is Sam's now, and Avery's load drops.
    const over = await sup.emitWithAck('conversation:transfer', { conversationId: conv.id, toUserId: sam.me.id, note: 'Taken over' });
    expect(over).toMatchObject({ ok: true, data: { assigneeName: 'Sam Supervisor', status: 'active' } });
  });
});
