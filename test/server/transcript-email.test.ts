import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { backends, eventually, startTestServer, uuid, type Harness } from '../support/harness.js';
import { startSmtp } from '../support/smtp.js';

// One test starts a second server (a PGlite boot takes seconds on a busy machine).
jest.setTimeout(60_000);

// The constituent emails themselves the transcript: through a real SMTP server, public messages only.
describe.each(backends())('transcript by email on %s', (backend) => {
  let h: Harness;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer(backend, { env: { SMTP_URL: smtp.url, MAIL_FROM: 'City of Springfield <help@springfield.example>' } });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await smtp?.close();
  });

  it('sends the public transcript of an ended chat, never internal notes, a few times at most', async () => {
    const { token } = await h.widgetSession();
    const asC = (req: import('supertest').Test) => req.set('Authorization', `Bearer ${token}`);
    expect((await asC(h.http.get('/api/widget/availability'))).body.emailTranscript).toBe(true);
    const conv = await h.startConversation(token, { name: 'Mail Person', message: 'My bin was missed' });
    const agent = await h.staffSocket(await h.login());
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'A crew comes Friday.' });
    await agent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'Secret staff note',
      visibility: 'internal',
    });

    // Not before the chat has ended.
    const early = await asC(h.http.post(`/api/conversations/${conv.id}/transcript/email`)).send({ email: 'mail@example.org' });
    expect(early.status).toBe(409);
    await asC(h.http.post(`/api/conversations/${conv.id}/end`));

    const bad = await asC(h.http.post(`/api/conversations/${conv.id}/transcript/email`)).send({ email: 'not-an-email' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['email']);
    expect(smtp.inbox).toHaveLength(0);

    const ok = await asC(h.http.post(`/api/conversations/${conv.id}/transcript/email`)).send({ email: 'mail@example.org' });
    expect(ok.status).toBe(202);
    await eventually(() => smtp.inbox.length, 1);
    const mail = smtp.inbox[0]!;
    expect(mail.to).toEqual(['mail@example.org']);
    expect(mail.from).toBe('help@springfield.example');
    expect(mail.raw).toContain(conv.caseReference);
    expect(mail.raw).toContain('My bin was missed');
    expect(mail.raw).toContain('A crew comes Friday.');
    expect(mail.raw).not.toContain('Secret staff note');

    // Another constituent cannot mail someone else's transcript; and nobody can mail it endlessly.
    const other = (await h.widgetSession()).token;
    const stranger = await h.http
      .post(`/api/conversations/${conv.id}/transcript/email`)
      .set('Authorization', `Bearer ${other}`)
      .send({ email: 'x@example.org' });
    expect(stranger.status).toBe(404);
    for (let i = 0; i < 2; i++) {
      expect((await asC(h.http.post(`/api/conversations/${conv.id}/transcript/email`)).send({ email: 'mail@example.org' })).status).toBe(202);
    }
    const limited = await asC(h.http.post(`/api/conversations/${conv.id}/transcript/email`)).send({ email: 'mail@example.org' });
    expect(limited.status).toBe(429);
    await eventually(() => smtp.inbox.length, 3);
  });

  it('says email is unavailable when no mail server is set up', async () => {
    const plain = await startTestServer(backend);
    try {
      const { token } = await plain.widgetSession();
      expect((await plain.http.get('/api/widget/availability').set('Authorization', `Bearer ${token}`)).body.emailTranscript).toBe(false);
      const conv = await plain.startConversation(token, { name: 'No Mail' });
      await plain.http.post(`/api/conversations/${conv.id}/end`).set('Authorization', `Bearer ${token}`);
      const res = await plain.http
        .post(`/api/conversations/${conv.id}/transcript/email`)
        .set('Authorization', `Bearer ${token}`)
        .send({ email: 'mail@example.org' });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
    } finally {
      await plain.close();
    }
  });
});
