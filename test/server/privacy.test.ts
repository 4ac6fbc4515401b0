import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../server/src/db/client.js';
import { backends, eventually, nextEvent, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';
import { startSmtp } from '../support/smtp.js';

jest.setTimeout(60_000);

/**
 * Issue #11: a constituent downloads their own data from the portal (public content only) and asks for it to be
 * deleted; admins approve (through the retention code path; legal hold blocks it, nothing changes) or deny.
 */
describe.each(backends())('constituent data export and deletion requests on %s', (backend) => {
  let h: Harness;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let admin: StaffSession;
  let admin2: StaffSession;
  let agent: StaffSession;
  let reference: string;
  let caseId: string;
  let conversationId: string;
  let portalToken: string;
  let widgetToken: string;
  let requestId: string;
  const note = `INTERNAL-${uuid()}`;

  const db = () => h.server.database.db;
  const q = async <T>(s: ReturnType<typeof sql>) => rowsOf<T>(await db().execute(s));
  const as = (s: StaffSession) => ({
    get: (path: string) => h.http.get(path).set('Cookie', s.cookie),
    post: (path: string, body: object = {}) => h.http.post(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf).send(body),
    put: (path: string, body: object) => h.http.put(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf).send(body),
    delete: (path: string) => h.http.delete(path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf),
  });
  const messageCount = async () => (await q<{ n: number }>(sql`select count(*)::int as n from messages where conversation_id = ${conversationId}`))[0]!.n;

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer(backend, {
      env: { SMTP_URL: smtp.url, MAIL_FROM: 'City of Springfield <help@springfield.example>' },
      limits: { portalCodesPerIp: { points: 100, duration: 60 }, portalSignInsPerIp: { points: 100, duration: 60 } },
    });
    admin = await h.login('admin@demo.gov');
    agent = await h.login('agent@demo.gov');
    const [tmpl] = await q<{ hash: string; agency_id: string }>(sql`select password_hash as hash, agency_id from users where email = 'admin@demo.gov'`);
    await db().execute(sql`insert into users (agency_id, email, display_name, role, password_hash) values (${tmpl!.agency_id}, 'admin2@demo.gov', 'Second Admin', 'admin', ${tmpl!.hash})`);
    admin2 = await h.login('admin2@demo.gov');

    // A chat with a public reply and an internal note.
    const { token } = await h.widgetSession();
    widgetToken = token;
    const conv = await h.startConversation(token, { name: 'Dana Data', email: 'dana@example.org', message: 'Where is my permit?', clientMessageId: uuid() });
    conversationId = conv.id;
    reference = conv.caseReference;
    caseId = (await q<{ case_id: string }>(sql`select case_id from conversations where id = ${conv.id}`))[0]!.case_id;
    expect((await as(agent).post(`/api/conversations/${conv.id}/claim`)).status).toBe(200);
    expect((await as(agent).post(`/api/conversations/${conv.id}/messages`, { clientMessageId: uuid(), body: 'It is on its way.' })).status).toBe(201);
    expect((await as(agent).post(`/api/conversations/${conv.id}/messages`, { clientMessageId: uuid(), body: note, visibility: 'internal' })).status).toBe(201);

    // The constituent signs in to the portal with the code sent to them.
    expect((await h.http.post('/api/portal/codes').send({ agency: 'springfield', reference })).status).toBe(202);
    const isCode = (m: { to: string[]; raw: string }) => m.to.includes('dana@example.org') && m.raw.includes('code is');
    await eventually(() => smtp.inbox.some(isCode), true);
    const code = /code is (\d{6})/.exec(smtp.inbox.find(isCode)!.raw.replace(/=\r?\n/g, ''))![1]!;
    const session = await h.http.post('/api/portal/sessions').send({ agency: 'springfield', reference, code });
    expect(session.status).toBe(201);
    portalToken = session.body.token;
  }, 90_000);
  afterAll(async () => {
    await h?.close();
    await smtp?.close();
  });

  it('exports the constituent’s own conversations and cases as JSON, without internal notes', async () => {
    const res = await h.http.get('/api/portal/my-data').set('Authorization', `Bearer ${portalToken}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="my-data-\d{4}-\d{2}-\d{2}\.json"/);
    expect(res.body.you).toMatchObject({ name: 'Dana Data', email: 'dana@example.org' });
    expect(res.body.cases.map((c: { reference: string }) => c.reference)).toEqual([reference]);
    const texts = res.body.conversations.flatMap((c: { messages: { text: string }[] }) => c.messages.map((m) => m.text));
    expect(texts).toEqual(expect.arrayContaining(['Where is my permit?', 'It is on its way.']));
    expect(JSON.stringify(res.body)).not.toContain(note);
    expect(JSON.stringify(res.body)).not.toContain(caseId);
    expect((await h.http.get('/api/portal/my-data').set('Cookie', agent.cookie)).status).toBe(403);
    expect((await h.http.get('/api/portal/my-data')).status).toBe(401);
    expect((await q<{ n: number }>(sql`select count(*)::int as n from audit_log where action = 'constituent.export'`))[0]!.n).toBe(1);
  });

  it('takes a deletion request from a portal sign-in only, one at a time', async () => {
    const fromWidget = await h.http.post('/api/portal/deletion-requests').set('Authorization', `Bearer ${widgetToken}`).send({});
    expect(fromWidget.status).toBe(403);
    const tooLong = await h.http.post('/api/portal/deletion-requests').set('Authorization', `Bearer ${portalToken}`).send({ note: 'x'.repeat(1001) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.issues[0].path).toEqual(['note']);
    const res = await h.http.post('/api/portal/deletion-requests').set('Authorization', `Bearer ${portalToken}`).send({ note: 'Please forget me' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'pending', source: 'portal', caseReference: reference });
    requestId = res.body.id;
    const again = await h.http.post('/api/portal/deletion-requests').set('Authorization', `Bearer ${portalToken}`).send({});
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/already waiting/);
  });

  it('shows requests to admins only', async () => {
    const list = await as(admin).get('/api/admin/deletion-requests');
    expect(list.status).toBe(200);
    expect(list.body.requests).toEqual([expect.objectContaining({ id: requestId, status: 'pending', constituentName: 'Dana Data', note: 'Please forget me', heldCases: [] })]);
    expect((await as(agent).get('/api/admin/deletion-requests')).status).toBe(403);
    expect((await as(agent).post(`/api/admin/deletion-requests/${requestId}/approve`)).status).toBe(403);
  });

  it('refuses to approve while a case is on legal hold, saying which; nothing changes', async () => {
    expect((await as(admin).put(`/api/cases/${caseId}/legal-hold`, { reason: 'Records request 7' })).status).toBe(200);
    const before = await messageCount();
    const res = await as(admin).post(`/api/admin/deletion-requests/${requestId}/approve`);
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe(`Cannot delete while ${reference} is on legal hold. Clear the hold first, or deny the request.`);
    expect(await messageCount()).toBe(before);
    expect((await as(admin).get('/api/admin/deletion-requests')).body.requests[0]).toMatchObject({ status: 'pending', heldCases: [reference] });
  });

  it('approval removes the data through the retention path, anonymises the person and signs a report', async () => {
    expect((await as(admin).delete(`/api/cases/${caseId}/legal-hold`)).status).toBe(200);
    // The agent's console hears the chat end live (not only after a reload).
    const agentSocket = await h.staffSocket(agent);
    const heard = nextEvent(agentSocket, 'conversation:updated', 5000, (s) => s.id === conversationId && s.status === 'ended');
    const res = await as(admin).post(`/api/admin/deletion-requests/${requestId}/approve`, { note: 'Verified by phone' });
    expect(res.status).toBe(200);
    expect(await heard).toMatchObject({ id: conversationId, status: 'ended' });
    agentSocket.close();
    const [conv] = await q<{ status: string }>(sql`select status from conversations where id = ${conversationId}`);
    expect(conv).toEqual({ status: 'ended' });
    expect(res.body).toMatchObject({ status: 'approved', decidedBy: 'Alex Admin' });
    expect(await messageCount()).toBe(0);
    const [person] = await q<{ display_name: string | null; email: string | null }>(sql`select display_name, email from constituents where id = (select constituent_id from cases where id = ${caseId})`);
    expect(person).toEqual({ display_name: null, email: null });
    const [kase] = await q<{ title: string; status: string }>(sql`select title, status from cases where id = ${caseId}`);
    expect(kase).toEqual({ title: 'Removed at the constituent’s request', status: 'closed' });
    const verify = await as(admin).get(`/api/admin/purge-reports/${res.body.reportId}/verify`);
    expect(verify.body.valid).toBe(true);
    const reports = (await as(admin).get('/api/admin/purge-reports')).body.reports as { id: string; kind: string; counts: { cases: number } }[];
    expect(reports.find((r) => r.id === res.body.reportId)).toMatchObject({ kind: 'deletion_request', counts: { cases: 1 } });
    // Decided once.
    expect((await as(admin2).post(`/api/admin/deletion-requests/${requestId}/approve`)).status).toBe(409);
    // The portal session of an erased person is closed.
    expect((await h.http.get('/api/portal/my-data').set('Authorization', `Bearer ${portalToken}`)).status).toBe(401);
  });

  it('a request an admin records needs another admin to approve; a denial needs a reason', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Lee Letter', message: 'hello', clientMessageId: uuid() });
    const bad = await as(admin).post('/api/admin/deletion-requests', { caseReference: 'GEN-1999-000001' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['caseReference']);
    const made = await as(admin).post('/api/admin/deletion-requests', { caseReference: conv.caseReference.toLowerCase(), note: 'Letter of 3 March' });
    expect(made.status).toBe(201);
    const self = await as(admin).post(`/api/admin/deletion-requests/${made.body.id}/approve`);
    expect(self.status).toBe(403);
    expect(self.body.error.message).toMatch(/Another admin must approve/);
    const noReason = await as(admin2).post(`/api/admin/deletion-requests/${made.body.id}/deny`, {});
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.issues[0].path).toEqual(['note']);
    const denied = await as(admin2).post(`/api/admin/deletion-requests/${made.body.id}/deny`, { note: 'Identity not confirmed' });
    expect(denied.body).toMatchObject({ status: 'denied', decisionNote: 'Identity not confirmed', decidedBy: 'Second Admin' });
    const rows = await q<{ action: string }>(sql`select action from audit_log where object_type = 'deletion_request' order by seq`);
    expect(rows.map((r) => r.action)).toEqual(['deletion_request.create', 'deletion_request.approve', 'deletion_request.approve', 'deletion_request.create', 'deletion_request.deny']);
  });
});
