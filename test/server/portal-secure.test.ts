import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import type { Message, PortalCase, SyncResult } from '@casebridge/shared';
import { rowsOf } from '../../server/src/db/client.js';
import { backends, eventually, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';
import { startSmtp } from '../support/smtp.js';

jest.setTimeout(60_000);

/**
 * Issue #11: a secure-field request answered from the portal (not only the widget). The case page lists each open
 * request; the value is sealed, never a message or a timeline entry, and only the case's own constituent answers.
 */
describe.each(backends())('secure values from the portal on %s', (backend) => {
  let h: Harness;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let agent: StaffSession;
  const q = async <T>(s: ReturnType<typeof sql>) => rowsOf<T>(await h.server.database.db.execute(s));

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer(backend, {
      env: { SMTP_URL: smtp.url, MAIL_FROM: 'City of Springfield <help@springfield.example>' },
      limits: { portalCodesPerIp: { points: 100, duration: 60 }, portalSignInsPerIp: { points: 100, duration: 60 } },
    });
    agent = await h.login('agent@demo.gov');
  }, 90_000);
  afterAll(async () => {
    await h?.close();
    await smtp?.close();
  });

  /** A web chat with an email on it, signed in to the portal with the code mailed there. */
  async function portalCase(name: string, email: string) {
    const { token: widgetToken } = await h.widgetSession();
    const conv = await h.startConversation(widgetToken, { name, email, message: 'I need help with my benefits', clientMessageId: uuid() });
    expect((await h.http.post('/api/portal/codes').send({ agency: 'springfield', reference: conv.caseReference })).status).toBe(202);
    const isCode = (m: { to: string[]; raw: string }) => m.to.includes(email) && m.raw.includes(conv.caseReference) && m.raw.includes('code is');
    await eventually(() => smtp.inbox.some(isCode), true);
    const code = /code is (\d{6})/.exec(smtp.inbox.find(isCode)!.raw.replace(/=\r?\n/g, ''))![1]!;
    const session = await h.http.post('/api/portal/sessions').send({ agency: 'springfield', reference: conv.caseReference, code });
    expect(session.status).toBe(201);
    return { conv, widgetToken, portalToken: session.body.token as string };
  }

  it('lists open requests on the case page, takes the value from a portal session, seals it and keeps it out of messages and the timeline', async () => {
    const secret = '219-09-9999';
    const mine = await portalCase('Sam Secure', 'sam.secure@example.org');
    const other = await portalCase('Oli Other', 'oli.other@example.org');
    const as = staffApi(h, agent);
    await as.post(`/api/conversations/${mine.conv.id}/claim`).expect(200);
    const asked = (await as.post(`/api/conversations/${mine.conv.id}/secure-fields`, { label: 'Social Security number', kind: 'ssn' }).expect(201)).body as Message;
    const fieldId = asked.meta!.secureField!.id;
    // The constituent left the chat: the portal is where they answer now.
    await h.http.post(`/api/conversations/${mine.conv.id}/end`).set('Authorization', `Bearer ${mine.widgetToken}`).expect(200);

    const view = async (token: string, reference = mine.conv.caseReference) => h.http.get(`/api/portal/cases/${reference}`).set('Authorization', `Bearer ${token}`);
    const before = (await view(mine.portalToken)).body as PortalCase;
    expect(before.secureRequests).toEqual([{ id: fieldId, label: 'Social Security number', kind: 'ssn', requestedAt: expect.any(String) }]);
    // The other case's session sees no requests of this case, and cannot open it.
    expect(((await view(other.portalToken, other.conv.caseReference)).body as PortalCase).secureRequests).toEqual([]);
    expect((await view(other.portalToken)).status).toBe(404);

    const provide = (token: string, body: object) => h.http.post(`/api/secure-fields/${fieldId}`).set('Authorization', `Bearer ${token}`).send(body);
    // Another case's portal session cannot answer it (and learns nothing: not found); nothing is stored.
    const foreign = await provide(other.portalToken, { value: secret });
    expect(foreign.status).toBe(404);
    expect((await q<{ provided_at: string | null }>(sql`select provided_at from secure_fields where id = ${fieldId}`))[0]!.provided_at).toBeNull();
    // Bad input names the field.
    for (const body of [{}, { value: '   ' }, { value: 'x'.repeat(201) }]) {
      const bad = await provide(mine.portalToken, body);
      expect(bad.status).toBe(400);
      expect(bad.body.error.issues[0].path).toEqual(['value']);
    }
    expect((await provide(mine.portalToken, { value: 'x'.repeat(201) })).body.error.issues[0].message).toBe('The value can be at most 200 characters');

    const done = await provide(mine.portalToken, { value: secret });
    expect(done.status).toBe(201);
    expect(done.body.meta.secureField).toMatchObject({ id: fieldId, state: 'provided' });
    expect((await provide(mine.portalToken, { value: 'again' })).status).toBe(409);

    // The case page no longer asks, and shows only that it was provided.
    const after = (await view(mine.portalToken)).body as PortalCase;
    expect(after.secureRequests).toEqual([]);
    expect(after.messages.map((m) => m.body)).toContain('Secure value provided: Social Security number.');
    expect(JSON.stringify(after)).not.toContain(secret);

    // Sealed at rest; in no message, timeline entry, audit row or staff view of the case.
    const [row] = await q<{ value_sealed: string }>(sql`select value_sealed from secure_fields where id = ${fieldId}`);
    expect(row!.value_sealed).toMatch(/^v1\./);
    expect(row!.value_sealed).not.toContain(secret);
    expect(row!.value_sealed).not.toContain('9999');
    const caseId = (await q<{ case_id: string }>(sql`select case_id from conversations where id = ${mine.conv.id}`))[0]!.case_id;
    const leaks = await q<{ n: number }>(sql`
      select (select count(*) from messages where body like ${'%' + secret + '%'} or meta::text like ${'%' + secret + '%'})
           + (select count(*) from case_events where data::text like ${'%' + secret + '%'})
           + (select count(*) from audit_log where detail::text like ${'%' + secret + '%'}) as n`);
    expect(Number(leaks[0]!.n)).toBe(0);
    const staffMessages = ((await as.get(`/api/conversations/${mine.conv.id}/messages?afterSeq=0`).expect(200)).body as SyncResult).messages;
    expect(JSON.stringify(staffMessages)).not.toContain(secret);
    expect(JSON.stringify((await as.get(`/api/cases/${caseId}`).expect(200)).body)).not.toContain(secret);
    const [audit] = await q<{ actor_kind: string }>(sql`select actor_kind from audit_log where action = 'secure_field.provide' and object_id = ${fieldId}`);
    expect(audit).toEqual({ actor_kind: 'constituent' });

    // The assigned agent can still show it: the value arrived intact.
    expect((await as.post(`/api/secure-fields/${fieldId}/reveal`).expect(200)).body).toEqual({ id: fieldId, label: 'Social Security number', value: secret });
  });
});
