import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../server/src/db/client.js';
import { backends, DEMO_PASSWORD, startTestServer, type Harness, type StaffSession } from '../support/harness.js';
import { CookieJar, startOidcProvider, step, type TestOidcProvider } from '../support/oidc-provider.js';

/**
 * Issue #11: staff sign in through the agency's OpenID Connect provider — a real one (oidc-provider) on a
 * loopback port. Authorization code + PKCE; refused: wrong issuer, wrong audience, expired ID token, a replayed
 * or foreign state, an unverified email, no mapped role. Local passwords can be turned off per agency.
 */
describe.each(backends())('single sign-on on %s', (backend) => {
  let h: Harness;
  let idp: TestOidcProvider;
  let admin: StaffSession;
  let redirectUri: string;
  let permitsId: string;
  let generalId: string;

  const db = () => h.server.database.db;
  const auditRows = async (reason?: string) =>
    rowsOf<{ outcome: string; detail: Record<string, unknown>; actor_id: string | null }>(
      await db().execute(
        sql`select outcome, detail, actor_id from audit_log where action = 'auth.login' and detail->>'method' = 'oidc' ${reason ? sql`and detail->>'reason' = ${reason}` : sql``} order by seq`,
      ),
    );

  const settings = (over: Record<string, unknown> = {}) => ({
    enabled: true,
    displayName: 'Springfield ID',
    issuer: idp.issuer,
    clientId: idp.clientId,
    clientSecret: idp.clientSecret,
    emailDomains: ['demo.gov'],
    roleClaim: 'roles',
    roleMap: [
      { value: 'cb-admins', role: 'admin' },
      { value: 'cb-supervisors', role: 'supervisor' },
      { value: 'cb-agents', role: 'agent' },
      { value: 'cb-auditors', role: 'auditor' },
    ],
    groupClaim: 'groups',
    groupMap: [
      { value: 'permits-team', groupId: permitsId },
      { value: 'general-team', groupId: generalId },
    ],
    provisionUsers: true,
    passwordsOff: false,
    ...over,
  });
  const save = (body: Record<string, unknown>, s: StaffSession = admin) =>
    h.http.put('/api/admin/sign-in').set('Cookie', s.cookie).set('x-csrf-token', s.csrf).send(body);

  /**
   * Clicks "Sign in with Springfield ID": start at CaseBridge, through the provider's screens, up to the
   * redirect back to CaseBridge (not yet followed). Returns the callback URL on our server and the jar.
   */
  async function toCallback(sub: string, jar = new CookieJar()): Promise<{ callback: string; jar: CookieJar }> {
    idp.signInAs(sub);
    let r = await step(jar, `${h.url}/api/auth/sso/start?agency=springfield&next=/console/work`);
    expect(r.status).toBe(303);
    expect(r.location!.startsWith(idp.issuer)).toBe(true);
    const auth = new URL(r.location!);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toBeTruthy();
    expect(auth.searchParams.get('state')).toBeTruthy();
    expect(auth.searchParams.get('nonce')).toBeTruthy();
    for (let i = 0; i < 10; i++) {
      r = await step(jar, r.location!);
      expect([302, 303]).toContain(r.status);
      if (r.location!.startsWith(redirectUri)) {
        const back = new URL(r.location!);
        return { callback: `${h.url}${back.pathname}${back.search}`, jar };
      }
    }
    throw new Error('the provider never sent the browser back');
  }

  /** Follows the redirect back to CaseBridge: where the browser lands, and its session cookie if any. */
  async function finish(callback: string, jar: CookieJar): Promise<{ location: string; session?: string }> {
    const r = await step(jar, callback);
    expect(r.status).toBe(303);
    const session = jar.get(h.url, 'cb_session');
    return { location: new URL(r.location!).pathname + new URL(r.location!).search, session };
  }

  const me = (session: string) => h.http.get('/api/auth/me').set('Cookie', `cb_session=${session}`);

  beforeAll(async () => {
    h = await startTestServer(backend);
    admin = await h.login('admin@demo.gov');
    const s = await h.http.get('/api/admin/sign-in').set('Cookie', admin.cookie);
    redirectUri = s.body.redirectUri;
    idp = await startOidcProvider({ redirectUris: [redirectUri] });
    idp.accounts.set('agent-sub', { email: 'agent2@demo.gov', email_verified: true, name: 'Jordan Agent', roles: ['cb-agents'], groups: ['general-team'] });
    idp.accounts.set('new-sub', { email: 'new.hire@demo.gov', email_verified: true, name: 'Nia New', roles: ['cb-agents'], groups: ['permits-team'] });
    idp.accounts.set('unverified-sub', { email: 'supervisor@demo.gov', email_verified: false, roles: ['cb-supervisors'] });
    idp.accounts.set('norole-sub', { email: 'agent@demo.gov', email_verified: true, roles: ['somebody-else'] });
    idp.accounts.set('auditor-sub', { email: 'inspector@demo.gov', email_verified: true, name: 'Ira Inspector', roles: ['cb-auditors'] });
    const g = rowsOf<{ id: string; name: string }>(await db().execute(sql`select id, name from groups`));
    permitsId = g.find((x) => x.name === 'Permits')!.id;
    generalId = g.find((x) => x.name === 'General')!.id;
  }, 60_000);
  afterAll(async () => {
    await idp?.close();
    await h?.close();
  });

  it('lets only admins set the provider, keeps the client secret sealed and names the field at fault', async () => {
    const agent = await h.login('agent@demo.gov');
    expect((await h.http.get('/api/admin/sign-in').set('Cookie', agent.cookie)).status).toBe(403);
    expect((await save(settings(), agent)).status).toBe(403);

    const bad = await save(settings({ issuer: 'ftp://idp.example' }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['issuer']);
    const plainHttp = await save(settings({ issuer: 'http://login.example.gov' }));
    expect(plainHttp.status).toBe(400);
    expect(plainHttp.body.error).toMatchObject({ message: 'The issuer must use https', issues: [{ path: ['issuer'] }] });
    const foreignGroup = await save(settings({ groupMap: [{ value: 'x', groupId: '00000000-0000-4000-8000-000000000000' }] }));
    expect(foreignGroup.status).toBe(400);
    expect(foreignGroup.body.error.issues[0].path).toEqual(['groupMap', 0, 'groupId']);
    const noRole = await save(settings({ roleMap: [] }));
    expect(noRole.status).toBe(400);
    expect(noRole.body.error.issues[0].path).toEqual(['roleMap']);
    expect((await h.http.get('/api/admin/sign-in').set('Cookie', admin.cookie)).body.configured).toBe(false);

    const ok = await save(settings());
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ configured: true, enabled: true, hasClientSecret: true, issuer: idp.issuer, agencySlug: 'springfield' });
    expect(JSON.stringify(ok.body)).not.toContain(idp.clientSecret);
    const stored = rowsOf<{ s: string }>(await db().execute(sql`select client_secret_sealed as s from agency_sign_in`))[0]!.s;
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain(idp.clientSecret);
    // Saving again without a secret keeps the stored one.
    const { clientSecret: _omit, ...withoutSecret } = settings();
    expect((await save(withoutSecret)).body.hasClientSecret).toBe(true);
  });

  it('tells the sign-in page which provider an email address uses (by domain, nothing about accounts)', async () => {
    const found = await h.http.post('/api/auth/sso/discover').send({ email: 'anyone@DEMO.gov' });
    expect(found.status).toBe(200);
    expect(found.body.sso).toMatchObject({ agencyName: 'City of Springfield', displayName: 'Springfield ID', startUrl: '/api/auth/sso/start?agency=springfield' });
    expect((await h.http.post('/api/auth/sso/discover').send({ email: 'someone@elsewhere.org' })).body).toEqual({ sso: null });
    const bad = await h.http.post('/api/auth/sso/discover').send({ email: 'not an email' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['email']);
    expect((await h.http.get('/api/auth/sso/agency/springfield')).body.sso.displayName).toBe('Springfield ID');
    expect((await h.http.get('/api/auth/sso/agency/nowhere')).body).toEqual({ sso: null });
  });

  it('signs an existing staff member in with code + PKCE into an ordinary session, with groups from claims', async () => {
    const { callback, jar } = await toCallback('agent-sub');
    const { location, session } = await finish(callback, jar);
    expect(location).toBe('/console/work');
    expect(session).toBeTruthy();
    const who = await me(session!);
    expect(who.status).toBe(200);
    expect(who.body).toMatchObject({ email: 'agent2@demo.gov', role: 'agent' });
    // The provider decides the mapped groups: General (claimed) stays, Benefits (not in the map) is left alone.
    expect(who.body.groups.map((g: { name: string }) => g.name).sort()).toEqual(['Benefits', 'General']);
    expect(who.body.csrfToken).toBeTruthy();
    const ok = (await auditRows()).filter((r) => r.outcome === 'success');
    expect(ok).toHaveLength(1);
    expect(ok[0]!.detail).toMatchObject({ method: 'oidc', issuer: idp.issuer, provisioned: false });
  });

  it('creates an account on first sign-in when the agency allows it, with the mapped role and groups', async () => {
    const { callback, jar } = await toCallback('new-sub');
    const { session } = await finish(callback, jar);
    const who = await me(session!);
    expect(who.body).toMatchObject({ email: 'new.hire@demo.gov', displayName: 'Nia New', role: 'agent' });
    expect(who.body.groups.map((g: { name: string }) => g.name)).toEqual(['Permits']);
    // A second sign-in finds the same account by its provider identity.
    const again = await toCallback('new-sub');
    const second = await finish(again.callback, again.jar);
    expect((await me(second.session!)).body.id).toBe(who.body.id);
    expect(rowsOf<{ n: number }>(await db().execute(sql`select count(*)::int as n from users where email = 'new.hire@demo.gov'`))[0]!.n).toBe(1);
    // Its password cannot be used: there is none.
    expect((await h.http.post('/api/auth/login').send({ email: 'new.hire@demo.gov', password: '!sso-only' })).status).toBe(401);
  });

  it('refuses a replayed state, and a state finished in another browser', async () => {
    const { callback, jar } = await toCallback('agent-sub');
    expect((await finish(callback, jar)).session).toBeTruthy();
    // The same redirect again (the binding cookie is gone after use, so put it back as an attacker would).
    const replay = new CookieJar();
    const r = await step(replay, callback);
    expect(r.status).toBe(303);
    expect(new URL(r.location!).search).toBe('?sso_error=state_replayed');
    expect(replay.get(h.url, 'cb_session')).toBeUndefined();

    // Started in one browser, the redirect opened in another (login CSRF): refused, and the state is spent.
    const victim = await toCallback('agent-sub');
    const other = new CookieJar();
    const r2 = await step(other, victim.callback);
    expect(new URL(r2.location!).search).toBe('?sso_error=browser_mismatch');
    expect(other.get(h.url, 'cb_session')).toBeUndefined();
    const late = await finish(victim.callback, victim.jar);
    expect(late.location).toBe('/console/login?sso_error=state_replayed');
    expect(late.session).toBeUndefined();
    expect((await auditRows('state_replayed')).length).toBe(2);
    expect((await auditRows('browser_mismatch')).length).toBe(1);
  });

  it.each([
    ['wrong audience', (c: Record<string, unknown>) => ({ ...c, aud: 'some-other-app' }), 'aud'],
    ['wrong issuer', (c: Record<string, unknown>) => ({ ...c, iss: 'https://evil.example' }), 'iss'],
    ['expired', (c: Record<string, unknown>) => ({ ...c, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }), 'exp'],
  ])('refuses an ID token with the %s, signed by the provider itself', async (_name, change, claim) => {
    const before = (await auditRows('token_invalid')).length;
    const { callback, jar } = await toCallback('agent-sub');
    idp.tamperIdToken(change);
    try {
      const { location, session } = await finish(callback, jar);
      expect(location).toBe('/console/login?sso_error=token_invalid');
      expect(session).toBeUndefined();
    } finally {
      idp.tamperIdToken(undefined);
    }
    const rows = await auditRows('token_invalid');
    expect(rows.length).toBe(before + 1);
    expect(rows.at(-1)!.detail.claim).toBe(claim);
  });

  it('refuses an authorization response that names another issuer (mix-up)', async () => {
    const { callback, jar } = await toCallback('agent-sub');
    const forged = new URL(callback);
    forged.searchParams.set('iss', 'https://evil.example');
    const { location, session } = await finish(forged.href, jar);
    expect(location).toBe('/console/login?sso_error=token_invalid');
    expect(session).toBeUndefined();
  });

  it('refuses a provider whose discovery document names another issuer', async () => {
    const liar = await startOidcProvider({ redirectUris: [redirectUri], issuerPath: '/not-me' });
    try {
      // Served at the root but claiming to be .../not-me: the configured issuer does not match.
      expect((await save(settings({ issuer: liar.issuer.replace('/not-me', '') }))).status).toBe(200);
      const r = await step(new CookieJar(), `${h.url}/api/auth/sso/start?agency=springfield`);
      expect(r.status).toBe(303);
      expect(new URL(r.location!).search).toBe('?sso_error=provider_unreachable');
    } finally {
      await liar.close();
      expect((await save(settings())).status).toBe(200);
    }
  });

  it('does not match an account by an unverified email, and refuses people the role map does not cover', async () => {
    const a = await toCallback('unverified-sub');
    expect((await finish(a.callback, a.jar)).location).toBe('/console/login?sso_error=email_unverified');
    const b = await toCallback('norole-sub');
    expect((await finish(b.callback, b.jar)).location).toBe('/console/login?sso_error=no_role');
    expect((await auditRows('no_role')).length).toBe(1);
  });

  it('turns local passwords off for the agency: password sign-in refused, single sign-on still works', async () => {
    expect((await save(settings({ passwordsOff: true }))).status).toBe(200);
    try {
      const res = await h.http.post('/api/auth/login').send({ email: 'agent2@demo.gov', password: DEMO_PASSWORD });
      expect(res.status).toBe(403);
      expect(res.body.error.message).toMatch(/identity provider/);
      // A wrong password says only that it is wrong.
      expect((await h.http.post('/api/auth/login').send({ email: 'agent2@demo.gov', password: 'nope-nope' })).status).toBe(401);
      const { callback, jar } = await toCallback('agent-sub');
      expect((await me((await finish(callback, jar)).session!)).status).toBe(200);
      const off = rowsOf<{ n: number }>(await db().execute(sql`select count(*)::int as n from audit_log where action = 'auth.login' and detail->>'reason' = 'passwords_off'`));
      expect(off[0]!.n).toBe(1);
      // Passwords can only be turned off while single sign-on is on.
      const bad = await save(settings({ enabled: false, passwordsOff: true }));
      expect(bad.status).toBe(400);
      expect(bad.body.error.issues[0].path).toEqual(['passwordsOff']);
    } finally {
      expect((await save(settings({ passwordsOff: false }))).status).toBe(200);
    }
  });

  it('sends a sign-in for an agency without single sign-on back with a clear reason', async () => {
    const r = await step(new CookieJar(), `${h.url}/api/auth/sso/start?agency=nowhere`);
    expect(r.status).toBe(303);
    expect(new URL(r.location!).search).toBe('?sso_error=not_configured');
    const junk = await step(new CookieJar(), `${h.url}/api/auth/sso/callback?state=made-up&code=x`);
    expect(new URL(junk.location!).search).toBe('?sso_error=state_invalid');
  });

  it('the test provider itself never failed (every refusal above was ours, not a provider error)', () => {
    expect(idp.serverErrors).toEqual([]);
  });
});
