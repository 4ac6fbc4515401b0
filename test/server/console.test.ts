import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ConversationSummary, InboxPage, StaffMember } from '@casebridge/shared';
import {
  backends,
  collect,
  eventually,
  nextEvent,
  sleep,
  startTestServer,
  uuid,
  type ClientSocket,
  type Harness,
  type StaffSession,
  staffApi,
} from '../support/harness.js';

// What the agent console stands on: inbox views, search and counts, transfers, presence and the case panel.
describe.each(backends())('console API on %s', (backend) => {
  let h: Harness;
  let avery: StaffSession; // agent: General, Permits
  let jordan: StaffSession; // agent: General, Benefits
  let sam: StaffSession; // supervisor
  let admin: StaffSession;
  let averySock: ClientSocket;
  let jordanSock: ClientSocket;

  beforeAll(async () => {
    h = await startTestServer(backend, { env: {} });
    [avery, jordan, sam, admin] = await Promise.all([
      h.login('agent@demo.gov'),
      h.login('agent2@demo.gov'),
      h.login('supervisor@demo.gov'),
      h.login('admin@demo.gov'),
    ]);
    averySock = await h.staffSocket(avery);
    jordanSock = await h.staffSocket(jordan);
  }, 60_000);
  afterAll(async () => h?.close());

  const as = (s: StaffSession) => staffApi(h, s);
  const inbox = async (s: StaffSession, query: string) => {
    const res = await as(s).get(`/api/inbox?${query}`);
    expect(res.status).toBe(200);
    return res.body as InboxPage;
  };
  const newChat = async (body: Record<string, unknown> = {}) => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, body);
    return { token, ...conv };
  };
  const groupId = (s: StaffSession, name: string) => s.me.groups.find((g) => g.name === name)!.id;

  it('lists the queue first-come first-served, pages it with a cursor, and counts each view', async () => {
    const before = (await as(avery).get('/api/inbox/counts')).body;
    const made: { id: string; caseReference: string }[] = [];
    for (let i = 0; i < 5; i++) made.push(await newChat({ name: `Queue Person ${i}` }));
    const first = await inbox(avery, 'view=queue&limit=3');
    const second = await inbox(avery, `view=queue&limit=3&cursor=${first.nextCursor}`);
    const ids = [...first.conversations, ...second.conversations].map((c) => c.id);
    expect(first.nextCursor).not.toBeNull();
    expect(new Set(ids).size).toBe(ids.length);
    // Oldest first: the order they arrived in, with nothing skipped or repeated across pages.
    const ours = ids.filter((id) => made.some((m) => m.id === id));
    expect(ours).toEqual(made.map((m) => m.id).slice(0, ours.length));
    const counts = (await as(avery).get('/api/inbox/counts')).body;
    expect(counts.queue).toBe(before.queue + 5);
    expect(counts.open).toBe(before.open + 5);

    const row = first.conversations.find((c) => c.id === made[0]!.id)!;
    expect(row).toMatchObject({ groupName: 'General', assigneeName: null, caseStatus: 'new', priority: 'normal' });
  });

  it('searches by name, email, phone, case reference and message text', async () => {
    const c = await newChat({
      name: 'Quentin Searchable',
      email: 'quentin@example.org',
      phone: '+1 555 0101',
      message: 'My recycling bin was stolen from Maple Court',
    });
    for (const q of ['quentin searchable', 'quentin@example', '555 0101', c.caseReference, 'maple court']) {
      const page = await inbox(avery, `view=open&q=${encodeURIComponent(q)}`);
      expect(page.conversations.map((x) => x.id)).toEqual([c.id]);
    }
    // LIKE wildcards are plain characters in a search.
    expect((await inbox(avery, 'view=open&q=%25')).conversations).toEqual([]);
  });

  it('refuses bad inbox queries with the field at fault', async () => {
    for (const [query, field] of [
      ['view=everything', 'view'],
      ['limit=0', 'limit'],
      ['channel=fax', 'channel'],
      ['cursor=not-a-cursor', 'cursor'],
    ]) {
      const res = await as(avery).get(`/api/inbox?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.error.issues[0].path).toEqual([field]);
    }
    expect((await h.http.get('/api/inbox')).status).toBe(401);
  });

  it('tells the agent who lost a claim race who took the conversation', async () => {
    const c = await newChat({ name: 'Race Person' });
    const [a, b] = await Promise.all([
      averySock.emitWithAck('conversation:claim', { conversationId: c.id }),
      jordanSock.emitWithAck('conversation:claim', { conversationId: c.id }),
    ]);
    const winner = a.ok ? 'Avery Agent' : 'Jordan Agent';
    const lost = a.ok ? b : a;
    expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
    expect(lost).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: `${winner} has already taken this conversation` } });
    const mine = await inbox(a.ok ? avery : jordan, 'view=mine');
    expect(mine.conversations.map((x) => x.id)).toContain(c.id);
  });

  it('transfers to a colleague live: both consoles hear it, the note stays internal, the case follows', async () => {
    const c = await newChat({ name: 'Transfer Person' });
    const constituent = await h.constituentSocket(c.token);
    const constituentHears = collect(constituent, 'message:created');
    expect(await averySock.emitWithAck('conversation:claim', { conversationId: c.id })).toMatchObject({ ok: true });

    const transferred = (x: ConversationSummary) => x.id === c.id && x.assigneeId === jordan.me.id;
    const averyHears = nextEvent(averySock, 'conversation:updated', 2000, transferred);
    const jordanHears = nextEvent(jordanSock, 'conversation:updated', 2000, transferred);
    const jordanNote = nextEvent(jordanSock, 'message:created', 2000, (m) => m.conversationId === c.id);
    const ack = await averySock.emitWithAck('conversation:transfer', {
      conversationId: c.id,
      toUserId: jordan.me.id,
      note: 'Needs the benefits team, she has a case open there',
    });
    expect(ack).toMatchObject({ ok: true, data: { assigneeId: jordan.me.id, assigneeName: 'Jordan Agent', status: 'active' } });
    expect((await averyHears).assigneeId).toBe(jordan.me.id);
    expect((await jordanHears).assigneeId).toBe(jordan.me.id);
    const note = await jordanNote;
    expect(note).toMatchObject({ visibility: 'internal', author: { kind: 'system' } });
    expect(note.body).toBe('Avery Agent transferred this conversation to Jordan Agent: Needs the benefits team, she has a case open there');

    // Jordan may now reply; Avery no longer owns it.
    const reply = await jordanSock.emitWithAck('message:send', { conversationId: c.id, clientMessageId: uuid(), body: 'Hi, Jordan here' });
    expect(reply.ok).toBe(true);
    await eventually(() => constituentHears.map((m) => m.body), ['Hi, Jordan here']);
    await sleep(200);
    expect(constituentHears.some((m) => m.visibility === 'internal')).toBe(false);

    const detail = (await as(jordan).get(`/api/cases/${(ack as { data: ConversationSummary }).data.caseId}`)).body;
    expect(detail.assigneeName).toBe('Jordan Agent');
    expect(detail.events.map((e: { kind: string }) => e.kind)).toEqual(
      expect.arrayContaining(['conversation.started', 'conversation.assigned', 'conversation.transferred']),
    );
  });

  it('transfers to a group queue keeping the arrival time, and moves it out of the old group live', async () => {
    const c = await newChat({ name: 'Group Transfer Person' });
    expect(await averySock.emitWithAck('conversation:claim', { conversationId: c.id })).toMatchObject({ ok: true });
    const permits = groupId(avery, 'Permits');
    const res = await as(avery).post(`/api/conversations/${c.id}/transfer`, { toGroupId: permits, note: 'Permit question' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'queued', assigneeId: null, groupId: permits, groupName: 'Permits' });
    const original = (await as(sam).get(`/api/conversations/${c.id}`)).body;
    expect(res.body.createdAt).toBe(original.createdAt);
    // Jordan is not in Permits: the conversation is gone from his reach.
    expect((await as(jordan).get(`/api/conversations/${c.id}`)).status).toBe(404);
    const queue = await inbox(avery, `view=queue&groupId=${permits}`);
    expect(queue.conversations.map((x) => x.id)).toContain(c.id);
  });

  it('refuses bad transfers with a clear error and changes nothing', async () => {
    const c = await newChat({ name: 'Bad Transfer Person' });
    expect(await averySock.emitWithAck('conversation:claim', { conversationId: c.id })).toMatchObject({ ok: true });
    const cases: [object, string, string][] = [
      [{}, 'INVALID_PAYLOAD', 'toUserId'],
      [{ toUserId: jordan.me.id, toGroupId: groupId(avery, 'General') }, 'INVALID_PAYLOAD', 'toUserId'],
      [{ toUserId: uuid() }, 'INVALID_PAYLOAD', 'toUserId'],
      [{ toUserId: admin.me.id }, 'INVALID_PAYLOAD', 'toUserId'],
      [{ toUserId: avery.me.id }, 'INVALID_PAYLOAD', 'toUserId'],
      [{ toGroupId: uuid() }, 'INVALID_PAYLOAD', 'toGroupId'],
      [{ toUserId: jordan.me.id, note: 'x'.repeat(1001) }, 'INVALID_PAYLOAD', 'note'],
    ];
    for (const [body, code, field] of cases) {
      const res = await as(avery).post(`/api/conversations/${c.id}/transfer`, body);
      expect(res.body.error).toMatchObject({ code });
      expect(res.body.error.issues[0].path).toEqual([field]);
    }
    const after = (await as(avery).get(`/api/conversations/${c.id}`)).body;
    expect(after).toMatchObject({ assigneeId: avery.me.id, status: 'active' });
    // Admins read, they do not work conversations; strangers get nothing.
    expect((await as(admin).post(`/api/conversations/${c.id}/transfer`, { toUserId: jordan.me.id })).status).toBe(403);
    expect((await as(avery).post(`/api/conversations/${uuid()}/transfer`, { toUserId: jordan.me.id })).status).toBe(404);
  });

  it('shows presence live: signing in makes an agent available, away closes live chat, leaving makes them offline', async () => {
    const staff = (await as(sam).get('/api/staff')).body.staff as StaffMember[];
    expect(staff.find((s) => s.id === avery.me.id)).toMatchObject({ presence: 'available', capacity: 3 });

    const samSock = await h.staffSocket(sam);
    const heard = nextEvent(samSock, 'presence:changed', 2000, (x) => x.userId === avery.me.id);
    expect(await averySock.emitWithAck('presence:set', { presence: 'away' })).toMatchObject({ ok: true });
    expect(await heard).toEqual({ userId: avery.me.id, presence: 'away' });
    expect(await jordanSock.emitWithAck('presence:set', { presence: 'away' })).toMatchObject({ ok: true });
    // Sam is a supervisor in General too, and connected and available: live chat stays open.
    const { token } = await h.widgetSession();
    expect((await h.http.get('/api/widget/availability').set('Authorization', `Bearer ${token}`)).body.open).toBe(true);
    expect(await samSock.emitWithAck('presence:set', { presence: 'away' })).toMatchObject({ ok: true });
    expect((await h.http.get('/api/widget/availability').set('Authorization', `Bearer ${token}`)).body).toEqual({
      open: false,
      reason: 'no_agents',
      emailTranscript: false,
      textMe: false,
    });
    expect(await samSock.emitWithAck('presence:set', { presence: 'busy' as never })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_PAYLOAD' },
    });
    for (const s of [averySock, jordanSock]) await s.emitWithAck('presence:set', { presence: 'available' });

    // Sam closes his last socket: after a short grace (a reload is not leaving) he shows as offline.
    const offline = nextEvent(averySock, 'presence:changed', 3000, (x) => x.userId === sam.me.id);
    samSock.close();
    expect(await offline).toEqual({ userId: sam.me.id, presence: 'offline' });
    const after = (await as(avery).get('/api/staff')).body.staff as StaffMember[];
    expect(after.find((s) => s.id === sam.me.id)?.presence).toBe('offline');
  });

  it('tags cases, filters the inbox by tag, links cases both ways, and moves a conversation to another case', async () => {
    const first = await newChat({ name: 'Tag Person' });
    const second = await newChat({ name: 'Tag Person Again' });
    for (const c of [first, second]) await averySock.emitWithAck('conversation:claim', { conversationId: c.id });
    const caseOf = async (id: string) => (await as(avery).get(`/api/conversations/${id}`)).body.caseId as string;
    const caseA = await caseOf(first.id);
    let detail = (await as(avery).get(`/api/cases/${caseA}`)).body;

    const tagged = await as(avery).patch(`/api/cases/${caseA}`, { version: detail.version, tags: ['Pothole', 'follow-up', 'pothole'] });
    expect(tagged.status).toBe(200);
    expect(tagged.body.tags).toEqual(['follow-up', 'pothole']);
    expect((await inbox(avery, 'view=open&tag=pothole')).conversations.map((c) => c.id)).toEqual([first.id]);
    const badTag = await as(avery).patch(`/api/cases/${caseA}`, { version: tagged.body.version, tags: ['<script>'] });
    expect(badTag.status).toBe(400);
    expect(badTag.body.error.issues[0].path).toEqual(['tags', 0]);

    // Link A to B by reference: both sides list the other.
    const linked = await as(avery).post(`/api/cases/${caseA}/links`, { reference: second.caseReference.toLowerCase() });
    expect(linked.status).toBe(200);
    expect(linked.body.links.map((l: { reference: string }) => l.reference)).toEqual([second.caseReference]);
    const caseB = await caseOf(second.id);
    detail = (await as(avery).get(`/api/cases/${caseB}`)).body;
    expect(detail.links.map((l: { reference: string }) => l.reference)).toEqual([first.caseReference]);
    for (const [reference, field] of [[first.caseReference, 'reference'], ['SPR-1999-000001', 'reference'], ['', 'reference']]) {
      const res = await as(avery).post(`/api/cases/${caseA}/links`, { reference });
      expect(res.status).toBe(400);
      expect(res.body.error.issues[0].path).toEqual([field]);
    }
    const unlinked = await as(avery).delete(`/api/cases/${caseB}/links/${caseA}`);
    expect(unlinked.body.links).toEqual([]);
    const afterUnlink = (await as(avery).get(`/api/cases/${caseA}`)).body;
    expect(afterUnlink.links).toEqual([]);
    // Both timelines say so, each naming the other case.
    expect(afterUnlink.events.filter((e: { kind: string }) => e.kind === 'case.unlinked').map((e: { data: { reference: string } }) => e.data.reference)).toEqual([second.caseReference]);

    // The second conversation really belongs to the first case.
    const moved = await as(avery).post(`/api/conversations/${second.id}/case`, { reference: first.caseReference });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ caseId: caseA, caseReference: first.caseReference });
    const kinds = (await as(avery).get(`/api/cases/${caseA}`)).body.events.map((e: { kind: string }) => e.kind);
    expect(kinds).toContain('conversation.moved_in');
    const again = await as(avery).post(`/api/conversations/${second.id}/case`, { reference: first.caseReference });
    expect(again.status).toBe(400);
  });

  it('tells a colleague mentioned in an internal note, and only colleagues who may see the conversation', async () => {
    const c = await newChat({ name: 'Mention Person' });
    expect(await averySock.emitWithAck('conversation:claim', { conversationId: c.id })).toMatchObject({ ok: true });
    const heard = nextEvent(jordanSock, 'mention:created', 2000, (m) => m.conversationId === c.id);
    const note = { conversationId: c.id, visibility: 'internal' as const, body: '@jordan agent can you check her benefits case?' };
    expect(await averySock.emitWithAck('message:send', { ...note, clientMessageId: uuid() })).toMatchObject({ ok: true });
    expect(await heard).toEqual({
      conversationId: c.id,
      caseReference: c.caseReference,
      byName: 'Avery Agent',
      preview: '@jordan agent can you check her benefits case?',
    });

    // A public reply mentions nobody; a conversation Jordan cannot see never tells him about it.
    const heardAgain = collect(jordanSock, 'mention:created');
    await averySock.emitWithAck('message:send', { conversationId: c.id, clientMessageId: uuid(), body: 'Hi @Jordan Agent' });
    await as(avery).post(`/api/conversations/${c.id}/transfer`, { toGroupId: groupId(avery, 'Permits') });
    await averySock.emitWithAck('message:send', { ...note, clientMessageId: uuid() });
    await sleep(300);
    expect(heardAgain).toEqual([]);
  });

  it('moves a case only along the workflow, guards against lost updates and hides other groups’ cases', async () => {
    const c = await newChat({ name: 'Case Person' });
    const claim = await averySock.emitWithAck('conversation:claim', { conversationId: c.id });
    const caseId = (claim as { data: ConversationSummary }).data.caseId;
    const detail = (await as(avery).get(`/api/cases/${caseId}`)).body;
    expect(detail).toMatchObject({ status: 'open', reference: c.caseReference });
    expect(detail.allowedStatuses).toEqual(['awaiting_info', 'resolved', 'cancelled']);

    const heard = nextEvent(jordanSock, 'case:updated', 2000, (x) => x.caseId === caseId);
    const upd = await as(avery).patch(`/api/cases/${caseId}`, { version: detail.version, status: 'resolved', priority: 'high' });
    expect(upd.status).toBe(200);
    expect(upd.body).toMatchObject({ status: 'resolved', priority: 'high', allowedStatuses: ['open', 'closed'] });
    expect(await heard).toMatchObject({ caseId, status: 'resolved', priority: 'high' });
    expect(upd.body.events.map((e: { kind: string; actorName: string }) => [e.kind, e.actorName])).toEqual(
      expect.arrayContaining([
        ['case.status_changed', 'Avery Agent'],
        ['case.priority_changed', 'Avery Agent'],
      ]),
    );

    // A stale version loses: nothing is overwritten.
    const stale = await as(jordan).patch(`/api/cases/${caseId}`, { version: detail.version, status: 'open' });
    expect(stale.status).toBe(409);
    // Not an allowed transition.
    const bad = await as(avery).patch(`/api/cases/${caseId}`, { version: upd.body.version, status: 'awaiting_info' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['status']);
    const empty = await as(avery).patch(`/api/cases/${caseId}`, { version: upd.body.version });
    expect(empty.status).toBe(400);
    // Admins read cases; they do not work them.
    expect((await as(admin).get(`/api/cases/${caseId}`)).status).toBe(200);
    expect((await as(admin).patch(`/api/cases/${caseId}`, { version: upd.body.version, priority: 'low' })).status).toBe(403);
    expect((await as(avery).get(`/api/cases/${caseId}`)).body).toMatchObject({ status: 'resolved', version: upd.body.version });

    // Move it to Permits: Jordan (not in Permits) can no longer see the case at all.
    await as(avery).post(`/api/conversations/${c.id}/transfer`, { toGroupId: groupId(avery, 'Permits') });
    expect((await as(jordan).get(`/api/cases/${caseId}`)).status).toBe(404);
    expect((await as(jordan).get(`/api/cases/${uuid()}`)).status).toBe(404);
    expect((await as(jordan).get('/api/cases/not-a-uuid')).status).toBe(400);
  });
});
