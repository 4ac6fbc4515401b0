import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { CaseDetail, PortalAgency, PortalCase } from '@casebridge/shared';
import { backends, eventually, startTestServer, uuid, type Harness, type StaffSession, addOtherAgency } from '../support/harness.js';
import { startSmtp } from '../support/smtp.js';

jest.setTimeout(30_000);

// The constituent portal: a case is found with its reference AND a one-time code sent to the email on the case.
describe.each(backends())('the constituent portal on %s', (backend) => {
  let h: Harness;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let agent: StaffSession;
  let now = new Date();

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer(backend, {
      env: { SMTP_URL: smtp.url, MAIL_FROM: 'City of Springfield <help@springfield.example>' },
      now: () => now,
      limits: { portalCodesPerIp: { points: 100, duration: 60 }, portalSignInsPerIp: { points: 100, duration: 60 } },
    });
    await addOtherAgency(h);
    agent = await h.login('agent@demo.gov');
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await smtp?.close();
  });

  const paths = (res: { body: { error: { issues?: { path: unknown[] }[] } } }) => res.body.error.issues?.map((i) => i.path);
  const codeFor = async (to: string, reference: string) => {
    const isCode = (m: { to: string[]; raw: string }) => m.to.includes(to) && m.raw.includes(reference) && m.raw.includes('code is');
    await eventually(() => smtp.inbox.some(isCode), true);
    const mail = [...smtp.inbox].reverse().find(isCode)!;
    smtp.inbox.splice(smtp.inbox.indexOf(mail), 1);
    return /code is (\d{6})/.exec(mail.raw.replace(/=\r?\n/g, ''))![1]!;
  };
  const askCode = (reference: string, agency = 'springfield') => h.http.post('/api/portal/codes').send({ agency, reference });
  const signIn = (reference: string, code: string, agency = 'springfield') =>
    h.http.post('/api/portal/sessions').send({ agency, reference, code });

  async function chatCase(email: string) {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Portal Person', email });
    return { token, conv };
  }

  it('starts a request from the catalog without chat: a typed case with its answers, a reference and an email', async () => {
    const es = (await h.http.get('/api/portal/agencies/springfield?lang=es')).body as PortalAgency;
    const permitEs = es.services.find((s) => s.title === 'Solicitar un permiso de estacionamiento residencial')!;
    expect(permitEs.questions.map((q) => q.prompt)).toEqual(['Placa', 'Domicilio', 'Zona del permiso']);
    expect(permitEs.questions[2]).toMatchObject({ type: 'select', options: ['A', 'B', 'C', 'D'] });

    const base = { agency: 'springfield', serviceId: permitEs.id, name: 'Rita Request', email: 'rita@example.org' };
    for (const [body, at] of [
      [{ ...base, serviceId: uuid() }, ['serviceId']],
      [{ ...base, email: 'nope' }, ['email']],
      [{ ...base, answers: { plate: 'ABC 1', address: '1 Elm St', zone: 'Z' } }, ['answers', 'zone']],
      [{ ...base, answers: {} }, ['answers', 'plate']],
      [{ ...base, answers: { colour: 'red' } }, ['answers', 'colour']],
      [{ ...base, answers: { plate: 'ABC 1', address: '1 Elm St' } }, ['answers', 'zone']],
    ] as const) {
      const res = await h.http.post('/api/portal/requests').send(body);
      expect(res.status).toBe(400);
      expect(paths(res)![0]).toEqual(at);
    }
    expect((await h.http.post('/api/portal/requests').send({ ...base, agency: 'nowhere' })).status).toBe(404);

    const res = await h.http
      .post('/api/portal/requests')
      .send({ ...base, language: 'es', answers: { plate: 'RITA 1', address: '1 Elm St', zone: 'B' }, details: 'Mudanza reciente' });
    expect(res.status).toBe(201);
    const reference = res.body.reference as string;
    expect(reference).toMatch(/^PRM-\d{4}-\d{6}$/);
    await eventually(() => smtp.inbox.some((m) => m.to.includes('rita@example.org') && m.raw.includes(reference)), true);

    // Staff see a typed case with its playbook, the answers as fields, and what was written in the inbox.
    const found = (await h.http.get(`/api/inbox?view=queue&q=${reference}`).set('Cookie', agent.cookie)).body.conversations;
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ channel: 'portal', preview: 'Mudanza reciente', caseReference: reference });
    const detail = (await h.http.get(`/api/cases/${found[0].caseId}`).set('Cookie', agent.cookie)).body as CaseDetail;
    expect(detail).toMatchObject({ status: 'new', fields: { plate: 'RITA 1', address: '1 Elm St', zone: 'B' }, groupName: 'Permits' });
    expect(detail.tasks.length).toBeGreaterThan(0);
    expect(detail.sla.map((c) => c.metric)).toEqual(['first_response', 'resolution']);
  });

  it('signs in with reference and code only: wrong, reused, expired and foreign codes are refused', async () => {
    const { conv } = await chatCase('pat.portal@example.org');
    // Anyone may ask; the answer never says whether the reference exists.
    const unknown = await askCode('PRM-2026-999999');
    expect(unknown.status).toBe(202);
    expect((await askCode(conv.caseReference)).status).toBe(202);
    const code = await codeFor('pat.portal@example.org', conv.caseReference);

    const bad = await signIn(conv.caseReference, '12345');
    expect(bad.status).toBe(400);
    expect(paths(bad)![0]).toEqual(['code']);
    const wrong = await signIn(conv.caseReference, code === '000000' ? '000001' : '000000');
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.message).toMatch(/not right/);
    // The right code for another agency's portal does nothing.
    expect((await signIn(conv.caseReference, code, 'shelbyville')).status).toBe(400);
    const ok = await signIn(conv.caseReference.toLowerCase(), code);
    expect(ok.status).toBe(201);
    expect(ok.body.reference).toBe(conv.caseReference);
    // Used once only.
    expect((await signIn(conv.caseReference, code)).status).toBe(400);

    // An expired code.
    await askCode(conv.caseReference);
    const late = await codeFor('pat.portal@example.org', conv.caseReference);
    now = new Date(Date.now() + 11 * 60_000);
    const expired = await signIn(conv.caseReference, late);
    now = new Date();
    expect(expired.status).toBe(400);
    expect(expired.body.error.message).toMatch(/expired/);

    // Five wrong tries burn a code.
    await askCode(conv.caseReference);
    const fresh = await codeFor('pat.portal@example.org', conv.caseReference);
    const other = fresh === '111111' ? '222222' : '111111';
    for (let i = 0; i < 5; i++) expect((await signIn(conv.caseReference, other)).status).toBe(400);
    const locked = await signIn(conv.caseReference, fresh);
    expect(locked.status).toBe(429);
  });

  it('shows status, what is awaited and public messages; a reply answers the request and reopens the case', async () => {
    const { conv } = await chatCase('ann.answer@example.org');
    const sock = await h.staffSocket(agent);
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    await sock.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'We will look into it.' });
    await sock.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'staff only', visibility: 'internal' });
    await h.http.post(`/api/conversations/${conv.id}/end`).set('Cookie', agent.cookie).set('x-csrf-token', agent.csrf);
    const caseId = (await h.http.get(`/api/conversations/${conv.id}`).set('Cookie', agent.cookie)).body.caseId as string;
    let d = (await h.http.get(`/api/cases/${caseId}`).set('Cookie', agent.cookie)).body as CaseDetail;
    d = (
      await h.http
        .patch(`/api/cases/${caseId}`)
        .set('Cookie', agent.cookie)
        .set('x-csrf-token', agent.csrf)
        .send({ version: d.version, status: 'awaiting_info', request: 'a photo of the sign' })
    ).body;
    expect(d.status).toBe('awaiting_info');
    // The chat has ended, so the request goes by email, with the way to the portal.
    await eventually(() => smtp.inbox.some((m) => m.to.includes('ann.answer@example.org') && m.raw.includes('a photo of the sign')), true);
    const told = smtp.inbox.find((m) => m.to.includes('ann.answer@example.org') && m.raw.includes('a photo of the sign'))!;
    expect(told.raw.replace(/=\r?\n/g, '')).toContain('/portal/springfield');
    expect(d.events.at(-1)).toMatchObject({ kind: 'constituent.notified', data: { via: 'email' } });

    await askCode(conv.caseReference);
    const { token } = (await signIn(conv.caseReference, await codeFor('ann.answer@example.org', conv.caseReference))).body;
    const asC = (req: import('supertest').Test) => req.set('Authorization', `Bearer ${token}`);
    const view = (await asC(h.http.get(`/api/portal/cases/${conv.caseReference}`))).body as PortalCase;
    expect(view).toMatchObject({ status: 'awaiting_info', awaiting: 'a photo of the sign', stage: 'intake' });
    expect(view.messages.map((m) => m.body)).toContain('We will look into it.');
    expect(view.messages.map((m) => m.body)).not.toContain('staff only');
    expect(view.notices.map((n) => n.body)).toEqual([`To continue with case ${conv.caseReference} we need: a photo of the sign`]);
    // Another constituent's case, and a made-up one, are not found.
    const strangers = await chatCase('stranger@example.org');
    expect((await asC(h.http.get(`/api/portal/cases/${strangers.conv.caseReference}`))).status).toBe(404);
    expect((await asC(h.http.get('/api/portal/cases/STR-2026-999999'))).status).toBe(404);
    // Without a token: 401.
    expect((await h.http.get(`/api/portal/cases/${conv.caseReference}`)).status).toBe(401);

    // Upload the requested photo, then reply with it.
    const { conversationId } = (await asC(h.http.post(`/api/portal/cases/${conv.caseReference}/conversation`))).body;
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d5b1d90000000049454e44ae426082', 'hex');
    const up = await asC(h.http.post(`/api/conversations/${conversationId}/attachments`))
      .set('Content-Type', 'application/octet-stream')
      .set('x-filename', 'sign.png')
      .send(png);
    expect(up.status).toBe(201);
    const empty = await asC(h.http.post(`/api/portal/cases/${conv.caseReference}/messages`)).send({ clientMessageId: uuid(), body: '' });
    expect(empty.status).toBe(400);
    const replyId = uuid();
    const reply = await asC(h.http.post(`/api/portal/cases/${conv.caseReference}/messages`)).send({
      clientMessageId: replyId,
      body: 'Here is the photo',
      attachmentIds: [up.body.id],
    });
    expect(reply.status).toBe(201);
    // A retry of the same reply is not a second message.
    const again = await asC(h.http.post(`/api/portal/cases/${conv.caseReference}/messages`)).send({ clientMessageId: replyId, body: 'Here is the photo', attachmentIds: [up.body.id] });
    expect(again.status).toBe(200);
    const after = again.body as PortalCase;
    expect(after.messages.filter((m) => m.body === 'Here is the photo')).toHaveLength(1);
    expect(after.messages.at(-1)!.attachments.map((a) => a.filename)).toEqual(['sign.png']);
    expect(after.status).toBe('open');
    expect(after.awaiting).toBeNull();

    // The reply reaches the agent who owns the case, in a portal conversation.
    d = (await h.http.get(`/api/cases/${caseId}`).set('Cookie', agent.cookie)).body;
    expect(d.status).toBe('open');
    const portalConv = (await h.http.get(`/api/conversations/${conversationId}`).set('Cookie', agent.cookie)).body;
    expect(portalConv).toMatchObject({ channel: 'portal', status: 'active', assigneeName: 'Avery Agent' });
  });
});
