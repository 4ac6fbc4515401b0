import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import twilio from 'twilio';
import type { Message, SyncResult } from '@casebridge/shared';
import { rowsOf } from '../../server/src/db/client.js';
import { checkPattern, luhn, maskSensitive } from '../../server/src/lib/sensitive.js';
import { backends, eventually, nextEvent, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';

// RELIABILITY.md §5.7: 50 sensitive patterns → 100 % masked; 200 non-PII numbers → ≤ 2 % false positives.
describe('masking rules', () => {
  const cards = ['4111111111111111', '4012888888881881', '5555555555554444', '5105105105105100', '378282246310005', '371449635398431', '6011111111111117', '3530111333300000', '4222222222222', '6011000990139424'];
  const group = (d: string, sep: string) => (d.length === 15 ? [d.slice(0, 4), d.slice(4, 10), d.slice(10)] : d.match(/.{1,4}/g)!).join(sep);
  const ssns = ['123-45-6789', '219-09-9999', '078-05-1120', '536-22-1234', '900-70-1234', '772-18-3344', '401-55-0001', '665-43-2109', '123 45 6789', '219 09 9999', '536.22.1234', '772 18 3344'];
  const sensitive = [
    ...ssns.map((s) => `My SSN is ${s}, thanks`),
    ...ssns.slice(0, 8).map((s) => `social security number ${s.replace(/\D/g, '')}`),
    ...cards.map((c) => `card ${c} exp 12/29`),
    ...cards.map((c) => `please charge ${group(c, ' ')}`),
    ...cards.slice(0, 10).map((c) => `number: ${group(c, '-')}.`),
  ];
  const ordinary = [
    ...Array.from({ length: 40 }, (_, i) => `Call me at (555) ${String(100 + i).padStart(3, '0')}-${String(1000 + i * 37).slice(0, 4)}`),
    ...Array.from({ length: 30 }, (_, i) => `My phone is +1 555 ${String(200 + i)} ${String(4000 + i * 11)}`),
    ...Array.from({ length: 30 }, (_, i) => `Order number ${String(100000000 + i * 7919)}`),
    ...Array.from({ length: 20 }, (_, i) => `Permit PRM-2026-${String(i * 131).padStart(6, '0')} from 03/${String(1 + i).padStart(2, '0')}/2026`),
    ...Array.from({ length: 20 }, (_, i) => `ZIP 62701-${String(1000 + i * 17)} and $${i * 12}.50 due`),
    ...Array.from({ length: 20 }, (_, i) => `Account 4111 1111 1111 ${String(1112 + i * 2)} (not a real card)`),
    ...Array.from({ length: 20 }, (_, i) => `Parcel ${String(10 + i)}-${String(200 + i)}-${String(3000 + i)} tax year 2025`),
    ...Array.from({ length: 20 }, (_, i) => `Meeting at ${String(8 + (i % 10))}:30 on 2026-11-${String(1 + i).padStart(2, '0')}, room 000-00-${String(1000 + i)}`),
  ];

  it('masks all 50 sensitive patterns and keeps only the last four digits', () => {
    expect(sensitive).toHaveLength(50);
    const missed = sensitive.filter((s) => {
      const r = maskSensitive(s);
      return !r.kinds.length || /\d{5,}/.test(r.text.replace(/[ -]/g, '')) || r.text === s;
    });
    expect(missed).toEqual([]);
    expect(maskSensitive('My SSN is 123-45-6789, thanks')).toEqual({ text: 'My SSN is ***-**-6789, thanks', kinds: ['ssn'] });
    expect(maskSensitive('please charge 4111 1111 1111 1111').text).toBe('please charge **** **** **** 1111');
    expect(maskSensitive('amex 3782-822463-10005').text).toBe('amex ****-******-*0005');
  });

  it('leaves at most 2 % of 200 ordinary numbers masked (phones, orders, dates, Luhn-invalid cards, never-issued SSNs)', () => {
    expect(ordinary).toHaveLength(200);
    const hits = ordinary.filter((s) => maskSensitive(s).kinds.length > 0);
    expect(hits.length / ordinary.length).toBeLessThanOrEqual(0.02);
    expect(luhn('4111111111111111')).toBe(true);
    expect(luhn('4111111111111112')).toBe(false);
  });

  it('refuses agency patterns that are invalid, match nothing-at-all or could backtrack forever', () => {
    expect(checkPattern('\\bMED-\\d{6}\\b')).toBeUndefined();
    expect(checkPattern('[A-Z]{2}\\d{7}')).toBeUndefined();
    for (const bad of ['(a+)+$', '(a|aa)*b', '(\\d+\\s?)+x', '(', 'a*', '(x)\\1', '\\d*\\d*\\d*x', 'x'.repeat(201)]) {
      expect({ bad, ok: checkPattern(bad) === undefined }).toEqual({ bad, ok: false });
    }
  });
});

const SID = `AC${'b2'.repeat(16)}`;
const TOKEN = 'e1'.repeat(16);
const NUMBER = '+15550002222';
const BASE = 'https://cases.springfield.example';

describe.each(backends())('sensitive data on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let agent: StaffSession;
  let agent2: StaffSession;
  let supervisor: StaffSession;
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await h.server.database.db.execute(query));

  beforeAll(async () => {
    h = await startTestServer(backend);
    [admin, agent, agent2, supervisor] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov'), h.login('agent2@demo.gov'), h.login('supervisor@demo.gov')]);
  }, 60_000);
  afterAll(async () => h?.close());

  const messagesOf = async (s: StaffSession, conversationId: string) =>
    ((await staffApi(h, s).get(`/api/conversations/${conversationId}/messages?afterSeq=0`).expect(200)).body as SyncResult).messages;

  it('masks web chat (first message and later ones), the agency’s own patterns, and SMS before storing; staff see that it happened', async () => {
    // The agency adds its own pattern; a dangerous one is refused, naming it.
    const as = staffApi(h, admin);
    const bad = await as.put('/api/admin/sensitive-patterns', { patterns: [{ label: 'Medicaid', pattern: '\\bMED-\\d{6}\\b' }, { label: 'Evil', pattern: '(a+)+$' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['patterns', 1, 'pattern']);
    await staffApi(h, agent).put('/api/admin/sensitive-patterns', { patterns: [] }).expect(403);
    await as.put('/api/admin/sensitive-patterns', { patterns: [{ label: 'Medicaid', pattern: '\\bMED-\\d{6}\\b' }] }).expect(200);
    expect((await as.get('/api/admin/sensitive-patterns').expect(200)).body.patterns).toEqual([{ label: 'Medicaid', pattern: '\\bMED-\\d{6}\\b' }]);

    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'my ssn is 123-45-6789', clientMessageId: uuid() });
    const constituent = await h.constituentSocket(token);
    const sent = await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'card 4111 1111 1111 1111 and id MED-123456' });
    expect(sent.ok && sent.data.message).toMatchObject({ body: 'card **** **** **** 1111 and id ***-**3456', meta: { masked: ['card', 'custom'] } });
    const seen = await messagesOf(agent, conv.id);
    expect(seen.map((m) => [m.body, m.meta?.masked])).toEqual([
      ['my ssn is ***-**-6789', ['ssn']],
      ['card **** **** **** 1111 and id ***-**3456', ['card', 'custom']],
    ]);
    // The constituent's own view is the masked text too, and nothing in the database holds the numbers.
    const own = await h.http.get(`/api/conversations/${conv.id}/messages?afterSeq=0`).set('Authorization', `Bearer ${token}`).expect(200);
    expect((own.body as SyncResult).messages.map((m: Message) => m.body)).toEqual(seen.map((m) => m.body));
    const [{ n }] = (await q<{ n: number }>(sql`select count(*)::int as n from messages where body like '%6789%' and body like '%123-45%' or body like '%4111 1111%' or body like '%MED-123456%'`)) as [{ n: number }];
    expect(n).toBe(0);
    constituent.close();

    // SMS: the same rules before the text is stored.
    await as.put('/api/admin/twilio', { accountSid: SID, authToken: TOKEN, publicBaseUrl: BASE, numbers: [NUMBER] }).expect(200);
    const params = { AccountSid: SID, MessageSid: `SM${'7'.repeat(32)}`, From: '+15557650000', To: NUMBER, Body: 'SSN 219 09 9999 please' };
    await h.http
      .post('/webhooks/twilio/sms')
      .type('form')
      .set('X-Twilio-Signature', twilio.getExpectedTwilioSignature(TOKEN, `${BASE}/webhooks/twilio/sms`, params))
      .send(params)
      .expect(200);
    const [stored] = await q<{ body: string; meta: { masked: string[] } }>(sql`select body, meta from messages where external_id = ${params.MessageSid}`);
    expect(stored).toEqual({ body: 'SSN *** ** 9999 please', meta: { masked: ['ssn'] } });
  });

  it('secure fields: the agent asks, the constituent answers in a separate form, the value is sealed, never in the transcript, and only permitted staff reveal it (audited)', async () => {
    const secret = '536-22-1234';
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'I need help with benefits', clientMessageId: uuid() });
    const as = staffApi(h, agent);
    // Not yet theirs: no request.
    await as.post(`/api/conversations/${conv.id}/secure-fields`, { label: 'Social Security number', kind: 'ssn' }).expect(403);
    await as.post(`/api/conversations/${conv.id}/claim`).expect(200);
    const constituent = await h.constituentSocket(token);
    const asked = nextEvent(constituent, 'message:created', 3000, (m) => Boolean(m.meta?.secureField));
    const request = (await as.post(`/api/conversations/${conv.id}/secure-fields`, { label: 'Social Security number', kind: 'ssn' }).expect(201)).body as Message;
    const field = request.meta!.secureField!;
    expect(field).toMatchObject({ label: 'Social Security number', kind: 'ssn', state: 'requested' });
    expect((await asked).meta?.secureField?.id).toBe(field.id);

    // Only the constituent of that conversation answers, once.
    const other = await h.widgetSession();
    await h.http.post(`/api/secure-fields/${field.id}`).set('Authorization', `Bearer ${other.token}`).send({ value: secret }).expect(404);
    await staffApi(h, agent).post(`/api/secure-fields/${field.id}`, { value: secret }).expect(403);
    const provided = await h.http.post(`/api/secure-fields/${field.id}`).set('Authorization', `Bearer ${token}`).send({ value: secret }).expect(201);
    expect(provided.body.meta.secureField).toMatchObject({ id: field.id, state: 'provided' });
    await h.http.post(`/api/secure-fields/${field.id}`).set('Authorization', `Bearer ${token}`).send({ value: 'again' }).expect(409);

    // Not in any message, the transcript or the database in clear.
    const all = await messagesOf(agent, conv.id);
    expect(JSON.stringify(all)).not.toContain('1234');
    const transcript = await h.http.get(`/api/conversations/${conv.id}/transcript`).set('Authorization', `Bearer ${token}`).expect(200);
    expect(transcript.text).toContain('Secure value provided: Social Security number.');
    expect(transcript.text).not.toContain(secret);
    const [row] = await q<{ value_sealed: string }>(sql`select value_sealed from secure_fields where id = ${field.id}`);
    expect(row!.value_sealed).toMatch(/^v1\./);
    expect(row!.value_sealed).not.toContain(secret);

    // The assigned agent, a supervisor of the group and an admin may see it; a colleague may not.
    expect((await as.post(`/api/secure-fields/${field.id}/reveal`).expect(200)).body).toEqual({ id: field.id, label: 'Social Security number', value: secret });
    await staffApi(h, agent2).post(`/api/secure-fields/${field.id}/reveal`).expect(403);
    await staffApi(h, supervisor).post(`/api/secure-fields/${field.id}/reveal`).expect(200);
    await staffApi(h, admin).post(`/api/secure-fields/${field.id}/reveal`).expect(200);
    await eventually(
      async () => (await q<{ actor_role: string; outcome: string }>(sql`select actor_role, outcome from audit_log where action = 'secure_field.reveal' and object_id = ${field.id} order by seq`)).map((r) => `${r.actor_role}:${r.outcome}`),
      ['agent:success', 'agent:denied', 'supervisor:success', 'admin:success'],
    );
    constituent.close();
  });
});
