import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import twilio from 'twilio';
import type { ConversationSummary } from '@casebridge/shared';
import { backends, eventually, staffApi, startTestServer, type Harness, type StaffSession } from '../support/harness.js';
import { FakeTwilio } from '../support/fake-twilio.js';

const SID = `AC${'a1'.repeat(16)}`;
const TOKEN = 'f0'.repeat(16);
const NUMBER = '+15550001111';
const BASE = 'https://cases.springfield.example';

// Texts to the agency number land in the queue like chats; every webhook is verified and retries are harmless.
describe.each(backends())('inbound SMS on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let agent: StaffSession;
  let fake: FakeTwilio;
  let agentSocket: Awaited<ReturnType<Harness['staffSocket']>>;

  beforeAll(async () => {
    fake = (await FakeTwilio.start()).addAccount(SID, TOKEN);
    h = await startTestServer(backend, { env: { TWILIO_API_BASE_URL: fake.url } });
    [admin, agent] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov')]);
    // The agent stays online throughout: an agent who goes offline has their conversations put back in the queue.
    agentSocket = await h.staffSocket(agent);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await fake?.close();
  });

  let seq = 0;
  const sid = () => `SM${(++seq).toString(16).padStart(32, '0')}`;
  const text = (params: Record<string, string>, signature?: string) =>
    h.http
      .post('/webhooks/twilio/sms')
      .type('form')
      .set('X-Twilio-Signature', signature ?? twilio.getExpectedTwilioSignature(TOKEN, `${BASE}/webhooks/twilio/sms`, params))
      .send(params);
  const sms = (body: string, from = '+15557654321', messageSid = sid()) => ({ AccountSid: SID, MessageSid: messageSid, From: from, To: NUMBER, Body: body });
  const queue = async () => (await staffApi(h, agent).get('/api/inbox?view=queue')).body.conversations as ConversationSummary[];

  it('only an admin sets Twilio up; the auth token is sealed and never returned; bad values name the field', async () => {
    const as = staffApi(h, admin);
    expect((await as.get('/api/admin/twilio')).body).toMatchObject({ configured: false, hasAuthToken: false });
    // Texts before it is set up are refused and change nothing.
    expect((await text(sms('too early'))).status).toBe(403);
    const good = { accountSid: SID, authToken: TOKEN, publicBaseUrl: BASE, numbers: [NUMBER] };
    expect((await staffApi(h, agent).put('/api/admin/twilio', good)).status).toBe(403);
    for (const [body, at] of [
      [{ ...good, accountSid: 'XY123' }, ['accountSid']],
      [{ ...good, numbers: ['555-1234'] }, ['numbers', 0]],
      [{ ...good, publicBaseUrl: 'ftp://x' }, ['publicBaseUrl']],
    ] as const) {
      const res = await as.put('/api/admin/twilio', body);
      expect(res.status).toBe(400);
      expect(res.body.error.issues[0].path).toEqual(at);
    }
    const saved = await as.put('/api/admin/twilio', good);
    expect(saved.body).toEqual({ configured: true, accountSid: SID, hasAuthToken: true, publicBaseUrl: BASE, numbers: [NUMBER], missing: [] });
    expect(JSON.stringify(saved.body)).not.toContain(TOKEN);
    const stored = (await h.server.database.db.execute(
      sql`select twilio_auth_token_sealed as t from agencies where slug = 'springfield'`,
    )) as unknown as { rows: { t: string }[] };
    expect(stored.rows[0]!.t).not.toContain(TOKEN);
    expect(await queue()).toEqual([]);
  });

  it('refuses forged, unsigned and misaddressed texts without a trace', async () => {
    const params = sms('forged');
    expect((await text(params, 'not-a-signature')).status).toBe(403);
    expect((await h.http.post('/webhooks/twilio/sms').type('form').send(params)).status).toBe(403);
    const other = { ...params, To: '+15559990000' };
    expect((await text(other)).status).toBe(403);
    // Signed, but the body was changed after signing.
    const signed = twilio.getExpectedTwilioSignature(TOKEN, `${BASE}/webhooks/twilio/sms`, params);
    expect((await text({ ...params, Body: 'tampered' }, signed)).status).toBe(403);
    expect((await text(sms('bad sender', 'not-a-number'))).status).toBe(400);
    expect(await queue()).toEqual([]);
  });

  it('a text starts a queued conversation with a case; retries store it once; the next text joins it', async () => {
    const first = sms('My street light is out');
    const results = await Promise.all([text(first), text(first), text(first)]);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/xml/);
      expect(r.text).toContain('<Response');
    }
    await eventually(async () => (await queue()).map((c) => [c.channel, c.preview]), [['sms', 'My street light is out']]);
    const conv = (await queue())[0]!;
    expect(conv.caseReference).toMatch(/^SPR-\d{4}-\d{6}$/);
    await text(sms('It is on Elm St'));
    const messages = (await staffApi(h, agent).get(`/api/conversations/${conv.id}/messages`)).body.messages as { body: string; channel: string }[];
    expect(messages.map((m) => [m.channel, m.body])).toEqual([
      ['sms', 'My street light is out'],
      ['sms', 'It is on Elm St'],
    ]);
    expect(await queue()).toHaveLength(1);
  });

  // --- Outbound: replies, delivery status, failures and retries ---------------------------------------------
  const status = (params: Record<string, string>, signature?: string) =>
    h.http
      .post('/webhooks/twilio/sms/status')
      .type('form')
      .set('X-Twilio-Signature', signature ?? twilio.getExpectedTwilioSignature(TOKEN, `${BASE}/webhooks/twilio/sms/status`, params))
      .send(params);
  const callback = (messageSid: string, to: string, MessageStatus: string, extra: Record<string, string> = {}) =>
    status({ AccountSid: SID, MessageSid: messageSid, From: NUMBER, To: to, MessageStatus, ...extra });

  /** Waits for `fn` to return something truthy and returns it. */
  async function until<T>(fn: () => Promise<T | null | undefined> | T | null | undefined, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const sidOf = async (where: ReturnType<typeof sql>) => {
    const rows = (await h.server.database.db.execute(sql`select external_id as sid from messages where ${where}`)) as unknown as { rows: { sid: string | null }[] };
    return rows.rows[0]?.sid ?? null;
  };

  /** A constituent texts in from `from`; the agent takes the conversation. */
  async function takenThread(from: string, body = 'Hello from my phone') {
    expect((await text(sms(body, from))).status).toBe(200);
    const conv = await until(async () => (await queue()).find((c) => c.constituentPhone === from)?.id);
    expect((await staffApi(h, agent).post(`/api/conversations/${conv}/claim`)).status).toBe(200);
    return conv;
  }
  const reply = (conv: string, body: string) =>
    staffApi(h, agent).post(`/api/conversations/${conv}/messages`, { clientMessageId: crypto.randomUUID(), body, visibility: 'public' });
  const messagesOf = async (conv: string) =>
    (await staffApi(h, agent).get(`/api/conversations/${conv}/messages`)).body.messages as {
      id: string;
      body: string;
      delivery: { status: string; errorCode: string | null; error: string | null } | null;
      attachments: { id: string; contentType: string }[];
    }[];
  const queueOrMine = async (conv: string) => (await staffApi(h, agent).get(`/api/conversations/${conv}`)).body as { caseId: string };
  const sentTo = (to: string) => fake.sentMessages().filter((m) => m.To === to);

  it('an agent reply goes out through Twilio; status callbacks show delivered live; repeats and stale callbacks change nothing', async () => {
    const from = '+15550002001';
    const conv = await takenThread(from);
    const seen: string[] = [];
    agentSocket.on('message:delivery', (e) => seen.push(e.delivery.status));
    const res = await reply(conv, 'We have sent a crew.');
    expect(res.status).toBe(201);
    expect(res.body.message.delivery).toEqual({ status: 'pending', errorCode: null, error: null });
    await eventually(async () => sentTo(from).map((m) => [m.From, m.Body, m.StatusCallback]), [[NUMBER, 'We have sent a crew.', `${BASE}/webhooks/twilio/sms/status`]]);
    await eventually(async () => (await messagesOf(conv)).at(-1)!.delivery!.status, 'queued');
    const sid = await until(() => sidOf(sql`body = 'We have sent a crew.'`));
    // Unsigned and forged callbacks are refused and change nothing.
    expect((await status({ AccountSid: SID, MessageSid: sid, From: NUMBER, To: from, MessageStatus: 'failed' }, 'forged')).status).toBe(403);
    expect((await h.http.post('/webhooks/twilio/sms/status').type('form').send({ AccountSid: SID, MessageSid: sid, From: NUMBER, MessageStatus: 'failed' })).status).toBe(403);
    expect((await callback(sid, from, 'delivered')).status).toBe(204);
    await eventually(async () => (await messagesOf(conv)).at(-1)!.delivery!.status, 'delivered');
    // A late "sent" and a repeated "delivered" do not move it back or announce again.
    expect((await callback(sid, from, 'sent')).status).toBe(204);
    expect((await callback(sid, from, 'delivered')).status).toBe(204);
    expect((await messagesOf(conv)).at(-1)!.delivery).toEqual({ status: 'delivered', errorCode: null, error: null });
    await eventually(async () => seen, ['queued', 'delivered']);
    expect(sentTo(from)).toHaveLength(1);
    // Internal notes never go out by text.
    await staffApi(h, agent).post(`/api/conversations/${conv}/messages`, { clientMessageId: crypto.randomUUID(), body: 'note to self', visibility: 'internal' });
    await new Promise((r) => setTimeout(r, 200));
    expect(sentTo(from)).toHaveLength(1);
    agentSocket.off('message:delivery');
  });

  it('a Twilio failure keeps the reply on the timeline as failed with the code; a retry sends it once', async () => {
    const from = '+15550002002';
    const conv = await takenThread(from);
    fake.failNext({ status: 400, code: 21211, message: "The 'To' number is not a valid phone number." });
    expect((await reply(conv, 'First try')).status).toBe(201);
    await eventually(async () => (await messagesOf(conv)).at(-1)!.delivery, {
      status: 'failed',
      errorCode: '21211',
      error: "The 'To' number is not a valid phone number.",
    });
    const failed = (await messagesOf(conv)).at(-1)!;
    // Twilio unreachable: kept, marked as a network failure.
    fake.failNext('drop');
    let retried = await staffApi(h, agent).post(`/api/messages/${failed.id}/retry-delivery`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ status: 'failed', errorCode: 'NETWORK' });
    retried = await staffApi(h, agent).post(`/api/messages/${failed.id}/retry-delivery`);
    expect(retried.body).toEqual({ status: 'queued', errorCode: null, error: null });
    expect(sentTo(from).map((m) => m.Body)).toEqual(['First try']);
    // Only a failed text may be retried; only staff who may act on it.
    expect((await staffApi(h, agent).post(`/api/messages/${failed.id}/retry-delivery`)).status).toBe(409);
    const { token } = await h.widgetSession();
    expect((await h.http.post(`/api/messages/${failed.id}/retry-delivery`).set('Authorization', `Bearer ${token}`)).status).toBe(403);
    // The carrier could not deliver it: shown with the code in plain words, and it can be sent again.
    expect((await callback((await sidOf(sql`id = ${failed.id}`))!, from, 'undelivered', { ErrorCode: '30003' })).status).toBe(204);
    expect((await messagesOf(conv)).at(-1)!.delivery).toEqual({ status: 'undelivered', errorCode: '30003', error: 'The phone is unreachable or switched off' });
    expect((await staffApi(h, agent).post(`/api/messages/${failed.id}/retry-delivery`)).body.status).toBe('queued');
    expect(sentTo(from)).toHaveLength(2);
  });

  it('STOP is honoured and recorded: nothing is texted until START; HELP is answered', async () => {
    const from = '+15550002003';
    const conv = await takenThread(from);
    const stop = sms('Stop', from);
    const answers = await Promise.all([text(stop), text(stop)]);
    for (const a of answers) expect(a.status).toBe(200);
    const refused = await reply(conv, 'Are you still there?');
    expect([refused.status, refused.body.error?.message]).toEqual([409, expect.stringMatching(/opted out/)]);
    expect(refused.body.error.message).toMatch(/opted out/);
    expect(sentTo(from)).toHaveLength(0);
    const caseId = (await queueOrMine(conv)).caseId;
    const detail = async () => (await staffApi(h, agent).get(`/api/cases/${caseId}`)).body;
    const kinds = async () => ((await detail()).events as { kind: string }[]).map((e) => e.kind).filter((k) => k.startsWith('sms.'));
    expect(await kinds()).toEqual(['sms.opted_out']);
    const help = await text(sms('HELP', from));
    expect(help.text).toMatch(/<Message>City of Springfield: text your question[^<]*Reply STOP to stop texts\.<\/Message>/);
    expect((await text(sms('start', from))).status).toBe(200);
    expect(await kinds()).toEqual(['sms.opted_out', 'sms.opted_in']);
    expect((await reply(conv, 'Welcome back')).status).toBe(201);
    await eventually(async () => sentTo(from).map((m) => m.Body), ['Welcome back']);
    // Twilio itself says the number unsubscribed: that counts as STOP too.
    fake.failNext({ status: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' });
    expect((await reply(conv, 'One more thing')).status).toBe(201);
    await eventually(async () => (await messagesOf(conv)).at(-1)!.delivery!.errorCode, '21610');
    expect((await reply(conv, 'Hello?')).status).toBe(409);
    // The constituent's STOP, HELP and START are on the thread, once each.
    expect((await messagesOf(conv)).map((m) => m.body).filter((b) => /^(stop|help|start)$/i.test(b))).toEqual(['Stop', 'HELP', 'start']);
  });

  it('MMS pictures are fetched from Twilio with the account credentials, checked by type and size; other hosts are never fetched', async () => {
    const from = '+15550002004';
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    const messageSid = `MM${'4'.repeat(32)}`;
    const good = fake.addMedia(SID, messageSid, { bytes: png, contentType: 'image/png', redirect: true });
    const html = fake.addMedia(SID, messageSid, { bytes: Buffer.from('<html>hi</html>'), contentType: 'text/html' });
    const huge = fake.addMedia(SID, messageSid, { bytes: Buffer.alloc(11 * 1024 * 1024, 1), contentType: 'image/jpeg' });
    const elsewhere = `${fake.url}/2010-04-01/Accounts/${SID}/Messages/${messageSid}/Media/ME${'9'.repeat(32)}`;
    const params = {
      ...sms('Photo of the pothole', from, messageSid),
      NumMedia: '4',
      MediaUrl0: good,
      MediaContentType0: 'image/png',
      MediaUrl1: html,
      MediaContentType1: 'text/html',
      MediaUrl2: huge,
      MediaContentType2: 'image/jpeg',
      MediaUrl3: elsewhere,
      MediaContentType3: 'image/png',
    };
    expect((await text(params)).status).toBe(200);
    expect((await text(params)).status).toBe(200);
    const conv = await until(async () => (await queue()).find((c) => c.constituentPhone === from)?.id);
    const [m, ...rest] = await messagesOf(conv);
    expect(rest).toEqual([]);
    expect(m!.attachments.map((a) => a.contentType)).toEqual(['image/png']);
    expect(m!.body).toContain('Photo of the pothole');
    expect(m!.body).toContain('could not be received: type text/html is not accepted');
    expect(m!.body).toContain('could not be received: too large');
    expect(m!.body).toContain('not a media address of this Twilio account');
    // The retry was answered from what was stored: the pictures were fetched once.
    expect(fake.requests.filter((r) => r.path === new URL(good).pathname)).toHaveLength(1);
    expect(fake.requests.some((r) => r.path.includes(`ME${'9'.repeat(32)}`))).toBe(false);
    const download = await staffApi(h, agent).get(`/api/attachments/${(await messagesOf(conv))[0]!.attachments[0]!.id}`);
    expect(download.status).toBe(200);
    expect(Buffer.compare(download.body as Buffer, png)).toBe(0);
  });

  it('a web chat continues by text: the constituent is texted when it is their turn, keeps their case, and texts join the chat', async () => {
    const { token } = await h.widgetSession();
    const chat = await h.startConversation(token, { name: 'Texting Resident' });
    const widget = await h.constituentSocket(token);
    const heard: string[] = [];
    widget.on('message:created', (m) => heard.push(m.body));
    const link = (phone: string) => h.http.post(`/api/conversations/${chat.id}/text`).set('Authorization', `Bearer ${token}`).send({ phone });
    const bad = await link('call me maybe');
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['phone']);
    expect((await link(NUMBER)).status).toBe(400);
    // Staff cannot link someone's chat to a number.
    expect((await staffApi(h, agent).post(`/api/conversations/${chat.id}/text`, { phone: '(555) 000-3001' })).status).toBe(403);
    const linked = await link('(555) 000-3001');
    expect(linked.status).toBe(200);
    expect(linked.body).toEqual({ phone: '+15550003001' });
    expect((await until(() => sentTo('+15550003001')[0]))!.Body).toMatch(/You will get a text at this number when an agent is ready/);
    expect((await staffApi(h, agent).post(`/api/conversations/${chat.id}/claim`)).status).toBe(200);
    await eventually(async () => sentTo('+15550003001').length, 2);
    expect(sentTo('+15550003001')[1]!.Body).toBe('Avery Agent is ready to help you now. Reply here by text, or go back to the chat.');
    expect((await reply(chat.id, 'How can I help?')).status).toBe(201);
    await eventually(async () => sentTo('+15550003001').map((m) => m.Body).at(-1), 'How can I help?');
    // The reply came by text: it lands in the same chat and case.
    expect((await text(sms('My bin was not collected', '+15550003001'))).status).toBe(200);
    const all = await messagesOf(chat.id);
    expect(all.at(-1)!.body).toBe('My bin was not collected');
    await eventually(async () => heard.includes('My bin was not collected') && heard.includes('How can I help?'), true);
    expect((await queue()).some((c) => c.constituentPhone === '+15550003001')).toBe(false);
    widget.disconnect();
  });

  it('when routing hands a text-waiting chat to an agent, the constituent is texted that it is their turn', async () => {
    const jordan = await h.login('agent2@demo.gov');
    const jordanSocket = await h.staffSocket(jordan);
    const { token } = await h.widgetSession();
    const chat = await h.startConversation(token, { name: 'Routed Resident' });
    const linked = await h.http.post(`/api/conversations/${chat.id}/text`).set('Authorization', `Bearer ${token}`).send({ phone: '+15550003002' });
    expect(linked.status).toBe(200);
    const general = ((await staffApi(h, admin).get('/api/admin/groups')).body.groups as { id: string; name: string }[]).find((g) => g.name === 'General')!;
    expect((await staffApi(h, admin).put(`/api/admin/groups/${general.id}`, { routing: 'least_busy' })).status).toBe(200);
    try {
      const ready = await until(() => sentTo('+15550003002').find((m) => /is ready to help you now/.test(m.Body ?? '')));
      const assignee = (await staffApi(h, admin).get(`/api/conversations/${chat.id}`)).body.assigneeName as string;
      expect(ready.Body).toBe(`${assignee} is ready to help you now. Reply here by text, or go back to the chat.`);
    } finally {
      await staffApi(h, admin).put(`/api/admin/groups/${general.id}`, { routing: 'manual' });
      jordanSocket.disconnect();
    }
  });

  it('a texter without an email follows their case in the portal: the code comes by text and never enters the transcript', async () => {
    const phone = '+15550003010';
    await text(sms('Is my permit approved?', phone));
    await eventually(async () => (await queue()).some((c) => c.constituentPhone === phone), true);
    const conv = (await queue()).find((c) => c.constituentPhone === phone)!;
    const asked = await h.http.post('/api/portal/codes').send({ agency: 'springfield', reference: conv.caseReference });
    expect(asked.status).toBeLessThan(300);
    const sent = await until(() => sentTo(phone).find((m) => m.Body?.includes(conv.caseReference)));
    expect(sent.From).toBe(NUMBER);
    const code = /is (\d{6})\./.exec(sent.Body!)![1]!;
    const wrong = await h.http.post('/api/portal/sessions').send({ agency: 'springfield', reference: conv.caseReference, code: code === '000000' ? '000001' : '000000' });
    expect(wrong.status).toBe(400);
    const session = await h.http.post('/api/portal/sessions').send({ agency: 'springfield', reference: conv.caseReference, code });
    expect(session.status).toBe(201);
    const messages = (await staffApi(h, agent).get(`/api/conversations/${conv.id}/messages`)).body.messages as { body: string }[];
    expect(messages.map((m) => m.body)).toEqual(['Is my permit approved?']);
    // STOP means no code by text either: the answer looks the same, and nothing is sent.
    await text(sms('STOP', phone));
    const before = sentTo(phone).length;
    await h.http.post('/api/portal/codes').send({ agency: 'springfield', reference: conv.caseReference });
    await new Promise((r) => setTimeout(r, 300));
    expect(sentTo(phone).length).toBe(before);
  });
});
