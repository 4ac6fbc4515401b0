import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import twilio from 'twilio';
import { sleep, staffApi, startTestServer, uuid, type Harness } from '../support/harness.js';

// Canary personal data goes through every path; none of it may reach the logs (RELIABILITY.md §5.7).
describe('logs carry no personal data or secrets', () => {
  const lines: string[] = [];
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite', { logSink: (l) => lines.push(l) });
  }, 60_000);
  afterAll(async () => h?.close());

  it('texts, portal requests, secure fields, masking and staff reads (audited) at trace level leave no canary in the logs', async () => {
    const canary = {
      name: 'Quintessa Canaryworth',
      email: 'quintessa.canary@example.org',
      phone: '+15550104242',
      ssn: '536-22-7777',
      card: '4012 8888 8888 1881',
      secure: 'canary-secure-value-9931',
      sms: 'canary text about my permit',
      details: 'canary portal details about my water bill',
    };
    const staff = await h.login('agent@demo.gov');
    const admin = await h.login('admin@demo.gov');
    const sid = `AC${'c3'.repeat(16)}`;
    const tok = 'd4'.repeat(16);
    const base = 'https://cases.springfield.example';
    await staffApi(h, admin).put('/api/admin/twilio', { accountSid: sid, authToken: tok, publicBaseUrl: base, numbers: ['+15550003333'] }).expect(200);
    for (const [i, body] of [canary.sms, `my ssn ${canary.ssn}`].entries()) {
      const params = { AccountSid: sid, MessageSid: `SM${String(i).repeat(32)}`, From: canary.phone, To: '+15550003333', Body: body };
      await h.http
        .post('/webhooks/twilio/sms')
        .type('form')
        .set('X-Twilio-Signature', twilio.getExpectedTwilioSignature(tok, `${base}/webhooks/twilio/sms`, params))
        .send(params)
        .expect(200);
    }
    const services = (await h.http.get('/api/portal/agencies/springfield').expect(200)).body.services as { id: string; questions?: unknown[] }[];
    const service = services.find((x) => !x.questions?.length) ?? services[0]!;
    await h.http
      .post('/api/portal/requests')
      .send({ agency: 'springfield', serviceId: service.id, name: canary.name, email: canary.email, phone: canary.phone, language: 'en', details: `${canary.details} card ${canary.card}`, answers: {} })
      .expect(201);

    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: canary.name, email: canary.email, message: `ssn ${canary.ssn}`, clientMessageId: uuid() });
    const as = staffApi(h, staff);
    await as.post(`/api/conversations/${conv.id}/claim`).expect(200);
    const caseId = (await as.get(`/api/conversations/${conv.id}`).expect(200)).body.caseId as string;
    await as.get(`/api/cases/${caseId}`).expect(200);
    await as.get(`/api/cases/${uuid()}`).expect(404);
    const request = (await as.post(`/api/conversations/${conv.id}/secure-fields`, { label: 'Account number', kind: 'account' }).expect(201)).body;
    await h.http.post(`/api/secure-fields/${request.meta.secureField.id}`).set('Authorization', `Bearer ${token}`).send({ value: canary.secure }).expect(201);
    const revealed = await as.post(`/api/secure-fields/${request.meta.secureField.id}/reveal`).expect(200);
    expect(revealed.body.value).toBe(canary.secure);
    await staffApi(h, admin).get(`/api/admin/audit?actor=${encodeURIComponent(canary.email)}&format=csv`).expect(200);
    await sleep(200);

    const all = lines.join('\n');
    expect(lines.some((l) => l.includes('"level":10') || l.includes('"level":20') || l.includes('"level":30'))).toBe(true);
    for (const value of [...Object.values(canary), canary.ssn.replaceAll('-', ''), '4012888888881881', staff.cookie.split('=')[1]!, tok, token]) {
      expect({ value, found: all.includes(value) }).toEqual({ value, found: false });
    }
  }, 30_000);

  it('a full chat with canary name, email, phone and message bodies leaves no trace of them in the logs', async () => {
    const canary = {
      name: 'Zebulon Canarysson',
      email: 'zebulon.canary@example.org',
      phone: '+1 555 010 9999',
      body: 'my SSN is canary-123-45-6789',
    };
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, {
      name: canary.name,
      email: canary.email,
      phone: canary.phone,
      message: canary.body,
      clientMessageId: uuid(),
    });
    const staff = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(staff);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: `reply to ${canary.name}` });
    const constituent = await h.constituentSocket(token);
    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: canary.body });
    await h.http.post('/api/auth/login').send({ email: 'agent@demo.gov', password: 'wrong-canary-password' });
    await h.http.get(`/api/conversations/${conv.id}/messages?afterSeq=0`).set('Authorization', `Bearer ${token}`);
    constituent.close();
    await sleep(200);

    const all = lines.join('\n');
    expect(lines.length).toBeGreaterThan(5); // the logs really were captured
    for (const value of [...Object.values(canary), 'wrong-canary-password', token, staff.cookie.split('=')[1]!, 'agent@demo.gov']) {
      expect({ value, found: all.includes(value) }).toEqual({ value, found: false });
    }
  });
});
