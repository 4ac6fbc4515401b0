import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import twilio from 'twilio';
import type { ConversationSummary } from '@casebridge/shared';
import { backends, eventually, staffApi, startTestServer, type Harness, type StaffSession } from '../support/harness.js';

const SID = `AC${'a1'.repeat(16)}`;
const TOKEN = 'f0'.repeat(16);
const NUMBER = '+15550001111';
const BASE = 'https://cases.springfield.example';

// Texts to the agency number land in the queue like chats; every webhook is verified and retries are harmless.
describe.each(backends())('inbound SMS on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let agent: StaffSession;

  beforeAll(async () => {
    h = await startTestServer(backend);
    [admin, agent] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov')]);
  }, 60_000);
  afterAll(async () => h?.close());

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
});
