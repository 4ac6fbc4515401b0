import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { addOtherAgency, backends, nextEvent, staffApi, startTestServer, waitForDisconnect, type Harness, type StaffSession } from '../support/harness.js';

/** Admins open accounts, set roles and groups (agency-wide supervisors too), reset passwords and add groups. */
describe.each(backends())('staff administration on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let groups: Record<string, string>;
  const api = () => staffApi(h, admin);

  beforeAll(async () => {
    h = await startTestServer(backend);
    await addOtherAgency(h);
    admin = await h.login('admin@demo.gov');
    const res = await api().get('/api/groups');
    groups = Object.fromEntries((res.body.groups as { id: string; name: string }[]).map((g) => [g.name, g.id]));
  }, 60_000);
  afterAll(async () => h?.close());

  it('an admin opens an account; the colleague signs in and sees only their group', async () => {
    const res = await api().post('/api/admin/users', {
      email: 'Riley.New@Demo.gov',
      displayName: 'Riley New',
      role: 'agent',
      groupIds: [groups.Benefits],
      password: 'a-long-first-password',
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ email: 'riley.new@demo.gov', role: 'agent', groupIds: [groups.Benefits], allGroups: false, disabled: false });
    const riley = await h.login('riley.new@demo.gov', 'a-long-first-password');
    expect(riley.me.groups.map((g) => g.name)).toEqual(['Benefits']);
    const list = await api().get('/api/admin/users');
    expect(list.body.users.map((u: { email: string }) => u.email)).toContain('riley.new@demo.gov');
    // Another agency's staff never appear.
    expect(list.body.users.every((u: { email: string }) => u.email.endsWith('@demo.gov'))).toBe(true);
  });

  it('bad accounts are refused with the field at fault, and nothing is created', async () => {
    const base = { email: 'x@demo.gov', displayName: 'X', role: 'agent', groupIds: [], password: 'long-enough-password' };
    const cases: [object, number, string][] = [
      [{ ...base, password: 'short' }, 400, 'password'],
      [{ ...base, email: 'not-an-email' }, 400, 'email'],
      [{ ...base, displayName: '  ' }, 400, 'displayName'],
      [{ ...base, role: 'owner' }, 400, 'role'],
      [{ ...base, groupIds: ['6d1f3f0e-8a1c-4a53-9d6e-0e0c6b1f2a11'] }, 400, 'groupIds.0'],
      [{ ...base, allGroups: true }, 400, 'allGroups'],
      [{ ...base, email: 'agent@demo.gov' }, 409, 'email'],
      [{ ...base, isRoot: true }, 400, ''],
    ];
    for (const [body, status, field] of cases) {
      const res = await api().post('/api/admin/users', body);
      expect([res.status, field && res.body.error.issues?.[0]?.path.join('.')]).toEqual([status, field && field]);
    }
    const list = await api().get('/api/admin/users');
    expect(list.body.users.filter((u: { email: string }) => u.email === 'x@demo.gov')).toEqual([]);
  });

  it('only admins manage accounts and groups', async () => {
    for (const who of ['supervisor@demo.gov', 'agent@demo.gov']) {
      const s = await h.login(who);
      const as = staffApi(h, s);
      expect((await as.get('/api/admin/users')).status).toBe(403);
      expect((await as.post('/api/admin/users', { email: 'y@demo.gov', displayName: 'Y', role: 'admin', groupIds: [], password: 'long-enough-password' })).status).toBe(403);
      expect((await as.post('/api/admin/groups', { name: 'Mine' })).status).toBe(403);
    }
    const other = await h.http.get('/api/admin/users');
    expect(other.status).toBe(401);
  });

  it('an agency-wide supervisor sees every group, including one added later, without being routed work', async () => {
    const created = await api().post('/api/admin/users', {
      email: 'wide@demo.gov',
      displayName: 'Wren Wide',
      role: 'supervisor',
      groupIds: [],
      allGroups: true,
      password: 'agency-wide-password',
    });
    expect(created.status).toBe(201);
    const wide = await h.login('wide@demo.gov', 'agency-wide-password');
    expect(wide.me.groups.map((g) => g.name).sort()).toEqual(['Benefits', 'General', 'Permits']);
    const board = await staffApi(h, wide).get('/api/dashboard');
    expect(board.status).toBe(200);
    expect(board.body.groups.map((g: { name: string }) => g.name).sort()).toEqual(['Benefits', 'General', 'Permits']);

    // A new group: the supervisor's open console hears its work without signing in again.
    const sock = await h.staffSocket(wide);
    const made = await api().post('/api/admin/groups', { name: 'Licensing' });
    expect(made.status).toBe(201);
    const licensing = (made.body.groups as { id: string; name: string }[]).find((g) => g.name === 'Licensing')!.id;
    expect((await staffApi(h, wide).get('/api/dashboard')).body.groups.map((g: { name: string }) => g.name)).toContain('Licensing');
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Lee' });
    const heard = nextEvent(sock, 'conversation:updated', 3000, (c) => c.id === conv.id && c.groupId === licensing);
    const agent = await h.login('agent@demo.gov');
    // Moving a conversation into the new group is something a supervisor does from the dashboard.
    const sup = await h.login('supervisor@demo.gov');
    const moved = await staffApi(h, admin).put(`/api/admin/users/${sup.me.id}/access`, { role: 'supervisor', groupIds: [groups.General, licensing] });
    expect(moved.status).toBe(200);
    const sup2 = await h.login('supervisor@demo.gov');
    const mv = await staffApi(h, sup2).post(`/api/conversations/${conv.id}/transfer`, { toGroupId: licensing, note: 'licensing question' });
    expect(mv.status).toBeLessThan(300);
    await heard;
    // Only the new group's room carries what happens next: the supervisor hears the constituent's message.
    const constituent = await h.constituentSocket(token);
    const message = nextEvent(sock, 'message:created', 3000, (m) => m.conversationId === conv.id);
    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: crypto.randomUUID(), body: 'Still there?' });
    expect((await message).body).toBe('Still there?');
    // The group-scoped agent no longer sees it; the agency-wide supervisor still does.
    expect((await staffApi(h, agent).get(`/api/conversations/${conv.id}`)).status).toBe(404);
    expect((await staffApi(h, wide).get(`/api/conversations/${conv.id}`)).status).toBe(200);

    // Agency-wide is a supervisor's scope: turning it off narrows them to their groups at once.
    const narrowed = await api().put(`/api/admin/users/${wide.me.id}/access`, { role: 'supervisor', groupIds: [groups.Permits], allGroups: false });
    expect(narrowed.body).toEqual({ role: 'supervisor', groupIds: [groups.Permits], allGroups: false });
    expect((await staffApi(h, wide).get(`/api/conversations/${conv.id}`)).status).toBe(404);
    const bad = await api().put(`/api/admin/users/${wide.me.id}/access`, { role: 'agent', groupIds: [], allGroups: true });
    expect([bad.status, bad.body.error.issues[0].path]).toEqual([400, ['allGroups']]);
  });

  it('a duplicate group name is refused naming the field', async () => {
    const res = await api().post('/api/admin/groups', { name: 'General' });
    expect([res.status, res.body.error.code, res.body.error.issues[0].path]).toEqual([409, 'CONFLICT', ['name']]);
    const empty = await api().post('/api/admin/groups', { name: ' ' });
    expect([empty.status, empty.body.error.issues[0].path]).toEqual([400, ['name']]);
  });

  it('a password reset ends every session of that colleague and the new password works', async () => {
    const before = await h.login('agent2@demo.gov');
    const sock = await h.staffSocket(before);
    const gone = waitForDisconnect(sock);
    const short = await api().post(`/api/admin/users/${before.me.id}/password`, { password: 'short' });
    expect([short.status, short.body.error.issues[0].path]).toEqual([400, ['password']]);
    const res = await api().post(`/api/admin/users/${before.me.id}/password`, { password: 'brand-new-password-2' });
    expect(res.status).toBe(204);
    await gone;
    expect((await staffApi(h, before).get('/api/auth/me')).status).toBe(401);
    await expect(h.login('agent2@demo.gov')).rejects.toThrow(/401/);
    const after = await h.login('agent2@demo.gov', 'brand-new-password-2');
    expect(after.me.email).toBe('agent2@demo.gov');
  });

  it('a disabled account can be enabled again', async () => {
    const made = await api().post('/api/admin/users', { email: 'temp@demo.gov', displayName: 'Temp', role: 'agent', groupIds: [groups.General], password: 'temporary-password' });
    expect((await api().post(`/api/admin/users/${made.body.id}/disable`)).status).toBe(204);
    await expect(h.login('temp@demo.gov', 'temporary-password')).rejects.toThrow(/401/);
    expect((await api().post(`/api/admin/users/${made.body.id}/enable`)).status).toBe(204);
    expect((await api().post(`/api/admin/users/${made.body.id}/enable`)).status).toBe(409);
    expect((await h.login('temp@demo.gov', 'temporary-password')).me.email).toBe('temp@demo.gov');
    const audit = await api().get('/api/admin/audit?action=user.enable');
    expect(audit.status).toBe(200);
  });
});
