import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { backends, DEMO_PASSWORD, nextEvent, sleep, startTestServer, waitForDisconnect, type Harness } from '../support/harness.js';

describe.each(backends())('staff sign-in and sessions on %s', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer(backend, {
      limits: { loginFailuresPerAccount: { points: 3, duration: 60 } },
      sessionRecheckMs: 500,
    });
  }, 60_000);
  afterAll(async () => h?.close());

  it('signs in with email and password into an httpOnly, SameSite session cookie', async () => {
    const res = await h.http.post('/api/auth/login').send({ email: 'Agent@Demo.gov', password: DEMO_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: 'agent@demo.gov', role: 'agent', agencyName: 'City of Springfield' });
    expect(res.body.groups.map((g: { name: string }) => g.name)).toEqual(['General', 'Permits']);
    expect(res.body).not.toHaveProperty('passwordHash');
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!;
    expect(cookie).toMatch(/^cb_session=/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const me = await h.http.get('/api/auth/me').set('Cookie', cookie.split(';')[0]!);
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.id);
  });

  it('rejects a wrong password without saying whether the account exists', async () => {
    const wrong = await h.http.post('/api/auth/login').send({ email: 'agent2@demo.gov', password: 'nope-nope' });
    const unknown = await h.http.post('/api/auth/login').send({ email: 'nobody@demo.gov', password: 'nope-nope' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body.error.code).toBe('UNAUTHENTICATED');
  });

  it('names the field at fault for a malformed login', async () => {
    const res = await h.http.post('/api/auth/login').send({ email: 'not-an-email', password: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_PAYLOAD');
    expect(res.body.error.issues).toEqual([expect.objectContaining({ path: ['email'] })]);
    const extra = await h.http.post('/api/auth/login').send({ email: 'a@b.gov', password: 'x', role: 'admin' });
    expect(extra.status).toBe(400);
  });

  it('locks an account after repeated failures, with Retry-After, even for the right password', async () => {
    for (let i = 0; i < 3; i++) {
      await h.http.post('/api/auth/login').send({ email: 'supervisor@demo.gov', password: `wrong-${i}` });
    }
    const res = await h.http.post('/api/auth/login').send({ email: 'supervisor@demo.gov', password: DEMO_PASSWORD });
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    // Another account from the same address is unaffected.
    expect((await h.http.post('/api/auth/login').send({ email: 'agent@demo.gov', password: DEMO_PASSWORD })).status).toBe(200);
  });

  it('requires the CSRF token and our origin for cookie-authenticated changes', async () => {
    const s = await h.login('agent@demo.gov');
    const noToken = await h.http.post('/api/auth/logout').set('Cookie', s.cookie);
    expect(noToken.status).toBe(403);
    expect(noToken.body.error.code).toBe('CSRF_FAILED');
    const evil = await h.http
      .post('/api/auth/logout')
      .set('Cookie', s.cookie)
      .set('x-csrf-token', s.csrf)
      .set('Origin', 'https://evil.example');
    expect(evil.status).toBe(403);
    // Still signed in: nothing changed.
    expect((await h.http.get('/api/auth/me').set('Cookie', s.cookie)).status).toBe(200);
  });

  it('logout ends the session and closes its open sockets within 5 s', async () => {
    const s = await h.login('agent@demo.gov');
    const socket = await h.staffSocket(s);
    const ended = nextEvent(socket, 'session:ended', 5000);
    const closed = waitForDisconnect(socket, 5000);
    const res = await h.http.post('/api/auth/logout').set('Cookie', s.cookie).set('x-csrf-token', s.csrf);
    expect(res.status).toBe(204);
    expect(await ended).toEqual({ reason: 'logout' });
    await closed;
    expect((await h.http.get('/api/auth/me').set('Cookie', s.cookie)).status).toBe(401);
    await expect(h.staffSocket(s)).rejects.toThrow('UNAUTHENTICATED');
  });

  it('disabling an account closes its sockets within 5 s and blocks sign-in; only admins may', async () => {
    const admin = await h.login('admin@demo.gov');
    const agent2 = await h.login('agent2@demo.gov');
    const agentSocket = await h.staffSocket(agent2);
    const other = await h.login('agent@demo.gov');
    const denied = await h.http
      .post(`/api/admin/users/${agent2.me.id}/disable`)
      .set('Cookie', other.cookie)
      .set('x-csrf-token', other.csrf);
    expect(denied.status).toBe(403);
    expect(agentSocket.connected).toBe(true);

    const closed = waitForDisconnect(agentSocket, 5000);
    const res = await h.http
      .post(`/api/admin/users/${agent2.me.id}/disable`)
      .set('Cookie', admin.cookie)
      .set('x-csrf-token', admin.csrf);
    expect(res.status).toBe(204);
    await closed;
    expect((await h.http.get('/api/auth/me').set('Cookie', agent2.cookie)).status).toBe(401);
    const login = await h.http.post('/api/auth/login').send({ email: 'agent2@demo.gov', password: DEMO_PASSWORD });
    expect(login.status).toBe(401);
  });

  it('a socket without a session cannot connect', async () => {
    await expect(h.staffSocket({ cookie: 'cb_session=forged', csrf: '', me: {} as never })).rejects.toThrow('UNAUTHENTICATED');
  });
});

describe('session inactivity', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite', { env: { SESSION_IDLE_MINUTES: '1' }, sessionRecheckMs: 200 });
  }, 60_000);
  afterAll(async () => h?.close());

  it('expires a session after the idle limit and closes its socket', async () => {
    const s = await h.login('agent@demo.gov');
    const socket = await h.staffSocket(s);
    // Age the session as if the agent had walked away, straight in the database.
    await h.server.database.db.execute(
      (await import('drizzle-orm')).sql`update sessions set last_seen_at = now() - interval '2 minutes'`,
    );
    await waitForDisconnect(socket, 5000);
    await sleep(50);
    const me = await h.http.get('/api/auth/me').set('Cookie', s.cookie);
    expect(me.status).toBe(401);
  });
});
