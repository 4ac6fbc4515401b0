import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import type { CaseDetail, ConversationSummary, GroupDetail } from '@casebridge/shared';
import { backends, eventually, staffApi, startTestServer, type Harness, type StaffSession } from '../support/harness.js';

jest.setTimeout(30_000);

// Automatic routing: work goes to the least busy available agent of the group, never past anyone's capacity.
describe.each(backends())('routing within a group on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let avery: StaffSession;
  let jordan: StaffSession;
  let sam: StaffSession;

  beforeAll(async () => {
    h = await startTestServer(backend);
    [admin, avery, jordan, sam] = await Promise.all([
      h.login('admin@demo.gov'),
      h.login('agent@demo.gov'),
      h.login('agent2@demo.gov'),
      h.login('supervisor@demo.gov'),
    ]);
    // General is worked by all three: Avery and Jordan take 2 chats at once, Sam 1.
    await h.server.database.db.execute(
      sql`update users set capacity = case email when 'supervisor@demo.gov' then 1 else 2 end where email in ('agent@demo.gov','agent2@demo.gov','supervisor@demo.gov')`,
    );
  }, 60_000);
  afterAll(async () => h?.close());

  const as = (s: StaffSession) => staffApi(h, s);
  const loads = async () => {
    const all = (await as(sam).get('/api/inbox?view=open&limit=100').expect(200)).body.conversations as ConversationSummary[];
    const active = all.filter((c) => c.status === 'active');
    const by = (name: string) => active.filter((c) => c.assigneeName === name).length;
    return { avery: by('Avery Agent'), jordan: by('Jordan Agent'), sam: by('Sam Supervisor'), queued: all.filter((c) => c.status === 'queued').length };
  };
  const arrive = async (name: string) => {
    const { token } = await h.widgetSession();
    return h.startConversation(token, { name });
  };

  it('only admins choose how a group routes; bad values name the field', async () => {
    const groups = (await as(admin).get('/api/admin/groups')).body.groups as GroupDetail[];
    const general = groups.find((g) => g.name === 'General')!;
    expect(general.routing).toBe('manual');
    expect((await as(avery).put(`/api/admin/groups/${general.id}`, { routing: 'least_busy' })).status).toBe(403);
    const bad = await as(admin).put(`/api/admin/groups/${general.id}`, { routing: 'fastest' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['routing']);
    expect((await as(admin).put('/api/admin/groups/00000000-0000-4000-8000-000000000000', { routing: 'least_busy' })).status).toBe(404);
  });

  it('assigns each arrival to the least busy available agent, stays within capacity, and says why', async () => {
    // Everyone signs in (available); then General starts routing.
    await Promise.all([h.staffSocket(avery), h.staffSocket(jordan), h.staffSocket(sam)]);
    const general = ((await as(admin).get('/api/admin/groups')).body.groups as GroupDetail[]).find((g) => g.name === 'General')!;
    await as(admin).put(`/api/admin/groups/${general.id}`, { routing: 'least_busy' }).expect(200);

    // One by one: nobody gets a second chat while someone has none.
    for (let i = 1; i <= 3; i++) {
      await arrive(`Caller ${i}`);
      await eventually(async () => (await loads()).queued, 0);
    }
    expect(await loads()).toEqual({ avery: 1, jordan: 1, sam: 1, queued: 0 });

    // Four more: Sam is full at 1, Avery and Jordan fill to 2; the rest wait in line.
    for (let i = 4; i <= 7; i++) await arrive(`Caller ${i}`);
    await eventually(loads, { avery: 2, jordan: 2, sam: 1, queued: 2 });

    // Why: the assignment on the timeline names the rule, who was eligible with their load, and who got it.
    const first = ((await as(sam).get('/api/inbox?view=open&q=Caller 1')).body.conversations as ConversationSummary[])[0]!;
    const detail = (await as(sam).get(`/api/cases/${first.caseId}`)).body as CaseDetail;
    const why = detail.events.find((e) => e.kind === 'conversation.assigned')!;
    expect(why).toMatchObject({ actorKind: 'system', data: { reason: 'routed', mode: 'least_busy', group: 'General' } });
    expect((why.data.eligible as { name: string }[]).map((e) => e.name).sort()).toEqual(['Avery Agent', 'Jordan Agent', 'Sam Supervisor']);
  });

  it('gives waiting work to whoever has room again, oldest first, and nothing to someone away', async () => {
    const waiting = ((await as(sam).get('/api/inbox?view=queue')).body.conversations as ConversationSummary[]).map((c) => c.id);
    expect(waiting).toHaveLength(2);
    // Avery steps away, then finishes a chat: the oldest waiting one does not go to her.
    await as(avery).put('/api/me/presence', { presence: 'away' }).expect(200);
    const averys = ((await as(avery).get('/api/inbox?view=mine')).body.conversations as ConversationSummary[])[0]!;
    await as(avery).post(`/api/conversations/${averys.id}/end`).expect(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(await loads()).toEqual({ avery: 1, jordan: 2, sam: 1, queued: 2 });
    // Jordan finishes one: he gets the first in line.
    const jordans = ((await as(jordan).get('/api/inbox?view=mine')).body.conversations as ConversationSummary[])[0]!;
    await as(jordan).post(`/api/conversations/${jordans.id}/end`).expect(200);
    await eventually(async () => (await as(sam).get(`/api/conversations/${waiting[0]}`)).body.assigneeName, 'Jordan Agent');
    // Avery comes back: the last one goes to her.
    await as(avery).put('/api/me/presence', { presence: 'available' }).expect(200);
    await eventually(async () => (await as(sam).get(`/api/conversations/${waiting[1]}`)).body.assigneeName, 'Avery Agent');
    expect(await loads()).toEqual({ avery: 2, jordan: 2, sam: 1, queued: 0 });

    // Capacity is the supervisor's to set (agents cannot), checked; more room takes waiting work at once.
    const staff = (await as(sam).get('/api/staff')).body.staff as { id: string; displayName: string }[];
    const jordanId = staff.find((s) => s.displayName === 'Jordan Agent')!.id;
    expect((await as(avery).put(`/api/staff/${jordanId}/capacity`, { capacity: 5 })).status).toBe(403);
    const bad = await as(sam).put(`/api/staff/${jordanId}/capacity`, { capacity: 99 });
    expect(bad.body.error.issues[0].path).toEqual(['capacity']);
    await arrive('Caller 8');
    await eventually(async () => (await loads()).queued, 1);
    await as(sam).put(`/api/staff/${jordanId}/capacity`, { capacity: 3, voiceCapacity: 1 }).expect(204);
    await eventually(loads, { avery: 2, jordan: 3, sam: 1, queued: 0 });
  });
});

// Routed work must be answered: lapsed or orphaned work goes back to the queue with its place kept.
describe.each(backends())('routed work nobody answers on %s', (backend) => {
  let h: Harness;
  let offset = 0;

  beforeAll(async () => {
    h = await startTestServer(backend, { now: () => new Date(Date.now() + offset) });
    await h.server.database.db.execute(
      sql`update users set capacity = case email when 'supervisor@demo.gov' then 0 else 1 end`,
    );
  }, 60_000);
  afterAll(async () => h?.close());

  it('goes back in line if not answered in time (the agent is set away), or if its agent goes offline', async () => {
    const [admin, avery, jordan, sam] = await Promise.all([
      h.login('admin@demo.gov'),
      h.login('agent@demo.gov'),
      h.login('agent2@demo.gov'),
      h.login('supervisor@demo.gov'),
    ]);
    const as = (s: StaffSession) => staffApi(h, s);
    const averySocket = await h.staffSocket(avery);
    const jordanSocket = await h.staffSocket(jordan);
    const general = ((await as(admin).get('/api/admin/groups')).body.groups as GroupDetail[]).find((g) => g.name === 'General')!;
    const bad = await as(admin).put(`/api/admin/groups/${general.id}`, { routing: 'least_busy', acceptSeconds: 5 });
    expect(bad.body.error.issues[0].path).toEqual(['acceptSeconds']);
    await as(admin).put(`/api/admin/groups/${general.id}`, { routing: 'least_busy', acceptSeconds: 60 }).expect(200);
    const tick = () => (h.server.app.services.timers as { tick(): Promise<unknown> }).tick();
    const view = async (id: string) => (await as(sam).get(`/api/conversations/${id}`)).body as ConversationSummary;

    const { token } = await h.widgetSession();
    const x = await h.startConversation(token, { name: 'Unanswered' });
    await eventually(async () => (await view(x.id)).status, 'active');
    const first = (await view(x.id)).assigneeName!;
    const [firstSession, otherName] = first === 'Avery Agent' ? [avery, 'Jordan Agent'] : [jordan, 'Avery Agent'];

    // Not answered within a minute: back in line, to the other agent; the first is set away.
    offset = 61_000;
    await tick();
    await eventually(async () => (await view(x.id)).assigneeName, otherName);
    const staff = (await as(sam).get('/api/staff')).body.staff as { displayName: string; presence: string }[];
    expect(staff.find((s) => s.displayName === first)!.presence).toBe('away');
    const timeline = ((await as(sam).get(`/api/cases/${(await view(x.id)).caseId}`)).body as CaseDetail).events.map((e) => [e.kind, e.data.reason]);
    expect(timeline).toEqual(expect.arrayContaining([['conversation.returned', 'not_accepted']]));

    // The second answers: the clock no longer applies.
    const otherSocket = otherName === 'Avery Agent' ? averySocket : jordanSocket;
    await otherSocket.emitWithAck('message:send', { conversationId: x.id, clientMessageId: crypto.randomUUID(), body: 'Hello, I am here' });
    offset = 200_000;
    await tick();
    expect((await view(x.id)).assigneeName).toBe(otherName);

    // A second constituent waits (the other agent is full, the first is away); the first comes back and gets it.
    const { token: t2 } = await h.widgetSession();
    const y = await h.startConversation(t2, { name: 'Orphaned' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await view(y.id)).status).toBe('queued');
    const arrived = (await view(y.id)).createdAt;
    await as(firstSession).put('/api/me/presence', { presence: 'available' }).expect(200);
    await eventually(async () => (await view(y.id)).assigneeName, first);
    // Then their browser closes: after the grace period they are offline and the unanswered chat is back in line,
    // with its original arrival time.
    (first === 'Avery Agent' ? averySocket : jordanSocket).disconnect();
    await eventually(async () => (await view(y.id)).status, 'queued');
    expect((await view(y.id)).createdAt).toBe(arrived);
  });
});

// Routing rules decide the group (and may raise the priority) for new work; the order is the precedence.
describe.each(backends())('routing rules on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let sam: StaffSession;
  let avery: StaffSession;

  beforeAll(async () => {
    h = await startTestServer(backend);
    [admin, sam, avery] = await Promise.all([h.login('admin@demo.gov'), h.login('supervisor@demo.gov'), h.login('agent@demo.gov')]);
  }, 60_000);
  afterAll(async () => h?.close());

  it('are edited by admins only, with every id checked, and previewed with an explanation', async () => {
    const as = (s: StaffSession) => staffApi(h, s);
    const groups = (await as(admin).get('/api/admin/groups')).body.groups as GroupDetail[];
    const benefits = groups.find((g) => g.name === 'Benefits')!;
    const permits = groups.find((g) => g.name === 'Permits')!;
    const services = (await as(admin).get('/api/services')).body.services as { id: string; title: { en: string }; caseTypeId: string }[];
    const pothole = services.find((s) => s.title.en === 'Report a pothole')!;
    const rules = [
      { name: 'Spanish speakers', conditions: { languages: ['es'], channels: ['web'] }, groupId: benefits.id, priority: 'high' },
      { name: 'Potholes to Permits', conditions: { serviceIds: [pothole.id] }, groupId: permits.id },
      { name: 'Returning to Permits', conditions: { returning: true, channels: ['web'] }, groupId: permits.id },
    ];
    expect((await as(avery).get('/api/admin/routing-rules')).status).toBe(403);
    expect((await as(sam).put('/api/admin/routing-rules', { rules })).status).toBe(403);
    for (const [body, at] of [
      [{ rules: [{ ...rules[0], groupId: '00000000-0000-4000-8000-000000000000' }] }, ['rules', 0, 'groupId']],
      [{ rules: [rules[0], { ...rules[1], conditions: { serviceIds: ['00000000-0000-4000-8000-000000000000'] } }] }, ['rules', 1, 'conditions', 'serviceIds', 0]],
      [{ rules: [{ ...rules[0], name: '' }] }, ['rules', 0, 'name']],
      [{ rules: [{ ...rules[0], conditions: { channels: ['fax'] } }] }, ['rules', 0, 'conditions', 'channels', 0]],
    ] as const) {
      const res = await as(admin).put('/api/admin/routing-rules', body);
      expect(res.status).toBe(400);
      expect(res.body.error.issues[0].path).toEqual(at);
    }
    expect((await as(admin).get('/api/admin/routing-rules')).body.rules).toEqual([]);
    const saved = await as(admin).put('/api/admin/routing-rules', { rules });
    expect(saved.status).toBe(200);
    expect(saved.body.rules.map((r: { name: string }) => r.name)).toEqual(['Spanish speakers', 'Potholes to Permits', 'Returning to Permits']);

    // The preview answers "where would this go?" — the first matching rule wins.
    const preview = async (facts: object) => (await as(sam).post('/api/admin/routing-rules/test', facts)).body;
    expect(await preview({ language: 'es', serviceId: pothole.id, caseTypeId: pothole.caseTypeId })).toMatchObject({
      rule: { name: 'Spanish speakers' },
      groupName: 'Benefits',
      priority: 'high',
    });
    expect(await preview({ serviceId: pothole.id, caseTypeId: pothole.caseTypeId })).toMatchObject({ rule: { name: 'Potholes to Permits' }, groupName: 'Permits' });
    expect(await preview({ channel: 'portal', language: 'es' })).toMatchObject({ rule: null, groupName: 'General' });

    // Real arrivals follow the rules, and the timeline says why.
    const { token } = await h.widgetSession();
    const es = await h.startConversation(token, { name: 'Hablante', language: 'es' });
    const view = (await as(sam).get(`/api/conversations/${es.id}`)).body as ConversationSummary;
    expect(view).toMatchObject({ groupName: 'Benefits', priority: 'high' });
    const started = ((await as(sam).get(`/api/cases/${view.caseId}`)).body as CaseDetail).events.find((e) => e.kind === 'conversation.started')!;
    expect(started.data.routing).toBe('Rule “Spanish speakers” sent it to Benefits');

    // The same person comes back in English: a returning constituent, routed by that attribute.
    await h.http.post(`/api/conversations/${es.id}/end`).set('Authorization', `Bearer ${token}`).expect(200);
    const again = await h.startConversation(token, { name: 'Hablante', language: 'en' });
    expect(((await as(sam).get(`/api/conversations/${again.id}`)).body as ConversationSummary).groupName).toBe('Permits');
    const { token: fresh } = await h.widgetSession();
    const newcomer = await h.startConversation(fresh, { name: 'Newcomer' });
    expect(((await as(sam).get(`/api/conversations/${newcomer.id}`)).body as ConversationSummary).groupName).toBe('General');
  });
});
