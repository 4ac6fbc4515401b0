import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import jwt from 'jsonwebtoken';
import twilio from 'twilio';
import type { CallSummary, CaseDetail, ConversationSummary, GroupDetail, VoiceSettings, VoiceToken } from '@casebridge/shared';
import { rowsOf } from '../../server/src/db/client.js';
import { FakeTwilio } from '../support/fake-twilio.js';
import { backends, eventually, staffApi, startTestServer, type Harness, type StaffSession } from '../support/harness.js';
import { all, one, spoken, twiml, type XmlNode } from '../support/twiml.js';

jest.setTimeout(30_000);

const SID = `AC${'b2'.repeat(16)}`;
const TOKEN = 'e1'.repeat(16);
const NUMBER = '+15550002222';
const BASE = 'https://calls.springfield.example';
const VOICE = `${BASE}/webhooks/twilio/voice`;
const KEY_SID = `SK${'c3'.repeat(16)}`;
const KEY_SECRET = 'voice-api-key-secret-0123456789ab';
const APP_SID = `AP${'d4'.repeat(16)}`;

type Params = Record<string, string>;

// Calls to the agency number: an IVR in English and Spanish, a queue, agents in the browser or on a phone,
// voicemail, callbacks; every webhook verified; every retry harmless.
describe.each(backends())('voice on %s', (backend) => {
  let h: Harness;
  let fake: FakeTwilio;
  let admin: StaffSession;
  let avery: StaffSession; // General, Permits
  let jordan: StaffSession; // General, Benefits
  let groups: Record<string, string>;

  beforeAll(async () => {
    fake = (await FakeTwilio.start()).addAccount(SID, TOKEN);
    h = await startTestServer(backend, { env: { TWILIO_API_BASE_URL: fake.url } });
    [admin, avery, jordan] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov'), h.login('agent2@demo.gov')]);
    // Two services are offered by phone: the parking permit (Permits) and the pothole (General). The demo
    // catalog offers more; the others are taken off the phone menu here.
    await h.server.database.db.execute(
      sql`update service_definitions set channels = array_remove(channels, 'voice') where title->>'en' not in ('Report a pothole', 'Apply for a residential parking permit')`,
    );
    expect(await count(sql`select count(*)::int as n from service_definitions where 'voice' = any(channels)`)).toBe(2);
    const g = (await as(admin).get('/api/admin/groups')).body.groups as GroupDetail[];
    groups = Object.fromEntries(g.map((x) => [x.name, x.id]));
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await fake?.close();
  });

  const as = (s: StaffSession) => staffApi(h, s);
  let seq = 0;
  const newSid = (prefix: 'CA' | 'RE') => `${prefix}${(++seq).toString(16).padStart(32, '0')}`;
  /** Posts a webhook as Twilio would: form-encoded, signed over the exact URL (path and query) with the token. */
  const hook = (pathAndQuery: string, params: Params, opts: { signature?: string; token?: string } = {}) =>
    h.http
      .post(`/webhooks/twilio/voice${pathAndQuery}`)
      .type('form')
      .set('X-Twilio-Signature', opts.signature ?? twilio.getExpectedTwilioSignature(opts.token ?? TOKEN, `${VOICE}${pathAndQuery}`, params))
      .send(params);
  const callParams = (callSid: string, from: string, extra: Params = {}): Params => ({
    AccountSid: SID,
    CallSid: callSid,
    From: from,
    To: NUMBER,
    CallStatus: 'in-progress',
    Direction: 'inbound',
    ...extra,
  });
  const xml = (res: { status: number; headers: Record<string, string>; text: string }): XmlNode => {
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/xml/);
    return twiml(res.text);
  };
  const count = async (q: ReturnType<typeof sql>) => Number(rowsOf<{ n: number }>(await h.server.database.db.execute(q))[0]!.n);
  const callRow = async (callSid: string) =>
    rowsOf<{ id: string; state: string; conversation_id: string | null; case_id: string | null; agent_id: string | null }>(
      await h.server.database.db.execute(sql`select id, state, conversation_id, case_id, agent_id from calls where call_sid = ${callSid}`),
    )[0]!;
  const caseOf = async (caseId: string) => (await as(admin).get(`/api/cases/${caseId}`)).body as CaseDetail;
  const eventsOf = async (caseId: string, kind: string) => (await caseOf(caseId)).events.filter((e) => e.kind === kind);
  const conversation = async (id: string) => (await as(admin).get(`/api/conversations/${id}`)).body as ConversationSummary;

  /** Runs a caller through greeting → language → menu into the queue; returns their call row. */
  async function callIn(from: string, lang: 'en' | 'es', menu: Params) {
    const sid = newSid('CA');
    xml(await hook('', callParams(sid, from)));
    xml(await hook('/language?attempt=0', callParams(sid, from, lang === 'en' ? { Digits: '1' } : { Digits: '2' })));
    xml(await hook(`/menu?lang=${lang}&attempt=0`, callParams(sid, from, menu)));
    return { sid, ...(await callRow(sid)) };
  }

  it('refuses unsigned, forged, misaddressed and malformed webhooks, and calls to an agency without Twilio, changing nothing', async () => {
    const sid = newSid('CA');
    const params = callParams(sid, '+15557770001');
    // Twilio is not set up yet: refused even when signed.
    expect((await hook('', params)).status).toBe(403);

    await as(admin)
      .put('/api/admin/twilio', { accountSid: SID, authToken: TOKEN, publicBaseUrl: BASE, numbers: [NUMBER] })
      .expect(200);
    expect((await h.http.post('/webhooks/twilio/voice').type('form').send(params)).status).toBe(403); // unsigned
    expect((await hook('', params, { signature: 'bm90IGEgc2lnbmF0dXJl' })).status).toBe(403); // forged
    expect((await hook('', params, { token: 'f0'.repeat(16) })).status).toBe(403); // another account's token
    expect((await hook('', { ...params, To: '+15559990000' })).status).toBe(403); // not our number
    // A valid signature replayed with a changed body, or against another step, does not pass.
    const signed = twilio.getExpectedTwilioSignature(TOKEN, VOICE, params);
    expect((await hook('', { ...params, From: '+15550000000' }, { signature: signed })).status).toBe(403);
    expect((await hook('/menu?lang=en&attempt=0', { ...params, Digits: '1' }, { signature: signed })).status).toBe(403);
    expect((await hook('/menu?lang=es&attempt=0', params, { signature: twilio.getExpectedTwilioSignature(TOKEN, `${VOICE}/menu?lang=en&attempt=0`, params) })).status).toBe(403);
    // Callbacks about calls we do not know, to no number of ours, cannot even be attributed.
    const rec = { AccountSid: SID, CallSid: sid, RecordingSid: newSid('RE'), RecordingUrl: 'https://api.twilio.com/x', RecordingStatus: 'completed' };
    expect((await hook('/recording?kind=voicemail', rec)).status).toBe(403);

    // Signed but malformed: 400.
    expect((await hook('', { ...params, CallSid: 'CA123' })).status).toBe(400);
    const { From: _from, ...noFrom } = params;
    expect((await hook('', noFrom)).status).toBe(400);
    expect((await hook('', { ...params, AccountSid: `AC${'00'.repeat(16)}` })).status).toBe(400);
    expect((await hook('/status', { ...params, CallStatus: '' })).status).toBe(400);
    expect((await hook('/recording?kind=voicemail', { ...rec, To: NUMBER, RecordingSid: 'nope' })).status).toBe(400);
    expect((await hook('/enqueued?lang=en', params)).status).toBe(400); // no QueueResult
    expect((await h.http.post('/webhooks/twilio/voice/nowhere').type('form').send(params)).status).toBe(404);

    expect(await count(sql`select count(*)::int as n from calls`)).toBe(0);
    expect(await count(sql`select count(*)::int as n from conversations where channel = 'voice'`)).toBe(0);
    expect(await count(sql`select count(*)::int as n from audit_log where action = 'twilio.voice_webhook' and outcome = 'denied'`)).toBeGreaterThanOrEqual(9);
  });

  it('English: greeting, language, the service menu (keys and speech), the queue with its place in line — as TwiML', async () => {
    const sid = newSid('CA');
    const from = '+15557770002';
    // 1. Greeting and the choice of language, both languages spoken in their own voice.
    const greet = xml(await hook('', callParams(sid, from)));
    expect(spoken(greet)[0]).toBe('Thank you for calling City of Springfield.');
    const gather = one(greet, 'Gather');
    expect(gather.attrs).toMatchObject({ input: 'dtmf speech', numDigits: '1', action: `${VOICE}/language?attempt=0`, method: 'POST' });
    expect(all(gather, 'Say').map((s) => [s.attrs.language, s.text])).toEqual([
      ['en-US', 'For English, press 1.'],
      ['es-US', 'Para español, oprima 2.'],
    ]);
    expect(one(greet, 'Redirect').text).toBe(`${VOICE}/language?attempt=0&default=en`);
    // A retry of the first webhook is the same call.
    xml(await hook('', callParams(sid, from)));
    expect(await count(sql`select count(*)::int as n from calls where call_sid = ${sid}`)).toBe(1);

    // 2. English: the menu lists the services offered by phone, in catalog order.
    const menu = xml(await hook('/language?attempt=0', callParams(sid, from, { Digits: '1' })));
    const m = one(menu, 'Gather');
    expect(m.attrs).toMatchObject({ input: 'dtmf speech', numDigits: '1', language: 'en-US', action: `${VOICE}/menu?lang=en&attempt=0` });
    expect(spoken(m)).toEqual([
      'Please tell us what you are calling about.',
      'For Apply for a residential parking permit, press 1.',
      'For Report a pothole, press 2.',
      'For anything else, press 0, or say what you need.',
    ]);
    expect(one(menu, 'Redirect').text).toBe(`${VOICE}/menu?lang=en&attempt=0&default=0`);

    // A key that means nothing: asked again once.
    const again = xml(await hook('/menu?lang=en&attempt=0', callParams(sid, from, { Digits: '7' })));
    expect(spoken(again)[0]).toBe('Sorry, I did not understand that.');
    expect(one(again, 'Gather').attrs.action).toBe(`${VOICE}/menu?lang=en&attempt=1`);

    // 3. Said in words: the pothole. The call waits in General's queue.
    const said = callParams(sid, from, { SpeechResult: 'There is a big pothole on my street', Confidence: '0.9' });
    const queued = xml(await hook('/menu?lang=en&attempt=1', said));
    const enqueue = one(queued, 'Enqueue');
    expect(enqueue.text).toBe(`cb-${groups.General}`);
    expect(enqueue.attrs).toMatchObject({ waitUrl: `${VOICE}/wait?lang=en`, waitUrlMethod: 'POST', action: `${VOICE}/enqueued?lang=en`, method: 'POST' });
    expect(spoken(queued)).toEqual(['Thank you. Please hold while we connect you to the next available person.']);
    // Twilio retrying the step changes nothing.
    expect(xml(await hook('/menu?lang=en&attempt=1', said)).children.map((c) => c.name)).toEqual(['Say', 'Enqueue']);

    const call = await callRow(sid);
    expect(call.state).toBe('queued');
    const conv = await conversation(call.conversation_id!);
    expect(conv).toMatchObject({ channel: 'voice', status: 'queued', groupId: groups.General });
    const detail = await caseOf(call.case_id!);
    expect(detail.title).toBe('Phone call: Report a pothole');
    const received = detail.events.filter((e) => e.kind === 'call.received');
    expect(received).toHaveLength(1);
    expect(received[0]!.data).toMatchObject({ from, language: 'en', service: 'Report a pothole' });
    expect(await count(sql`select count(*)::int as n from conversations where channel = 'voice'`)).toBe(1);

    // 4. Holding: their place among the callers waiting in the group, and the way out.
    const hold = xml(await hook('/wait?lang=en', callParams(sid, from, { QueuePosition: '1', QueueTime: '4' })));
    expect(spoken(hold)).toEqual([
      'You are next in line.',
      'Thank you for holding. Your call is important to us.',
      'To have us call you back instead, press 1. To leave a voicemail, press 2.',
    ]);
    expect(one(hold, 'Gather').attrs).toMatchObject({ action: `${VOICE}/wait-choice?lang=en`, language: 'en-US' });
    expect(one(hold, 'Pause').attrs.length).toBe('10');
    const second = await callIn('+15557770003', 'en', { Digits: '0' });
    expect(second.state).toBe('queued');
    expect(spoken(xml(await hook('/wait?lang=en', callParams(second.sid, '+15557770003'))))[0]).toBe('You are caller number 2 in line.');

    // Hanging up while waiting: abandoned, once however often Twilio says so.
    const hangups = await Promise.all([
      hook('/status', callParams(second.sid, '+15557770003', { CallStatus: 'completed', CallDuration: '30' })),
      hook('/status', callParams(second.sid, '+15557770003', { CallStatus: 'completed', CallDuration: '30' })),
      hook('/enqueued?lang=en', callParams(second.sid, '+15557770003', { QueueResult: 'hangup', QueueTime: '25' })),
    ]);
    hangups.forEach((r) => expect(r.status).toBeLessThan(300));
    expect((await callRow(second.sid)).state).toBe('abandoned');
    expect(await eventsOf(second.case_id!, 'call.abandoned')).toHaveLength(1);
    expect((await conversation(second.conversation_id!)).status).toBe('ended');
    // The first caller is next again.
    expect(spoken(xml(await hook('/wait?lang=en', callParams(sid, from))))[0]).toBe('You are next in line.');
  });

  it('a claim puts the caller through to the agent in the browser; ringing, answer, end and recording land once each', async () => {
    const queued = (await as(avery).get('/api/inbox?view=queue')).body.conversations as ConversationSummary[];
    const conv = queued.find((c) => c.channel === 'voice')!;
    const call = rowsOf<{ call_sid: string; from_number: string }>(
      await h.server.database.db.execute(sql`select call_sid, from_number from calls where conversation_id = ${conv.id}`),
    )[0]!;
    const before = fake.callUpdates().length;
    await as(avery).post(`/api/conversations/${conv.id}/claim`).expect(200);
    await eventually(() => fake.callUpdates().length, before + 1);
    const update = fake.callUpdates().at(-1)!;
    expect(update.callSid).toBe(call.call_sid);
    const bridge = twiml(update.form.Twiml!);
    const dial = one(bridge, 'Dial');
    expect(dial.attrs).toMatchObject({
      action: `${VOICE}/dialed?lang=en&conversation=${conv.id}`,
      record: 'record-from-answer-dual',
      recordingStatusCallback: `${VOICE}/recording?kind=call`,
      timeout: '20',
    });
    const client = one(dial, 'Client');
    expect(client.text).toBe(`agent_${avery.me.id.replace(/-/g, '')}`);
    expect(client.attrs).toMatchObject({ statusCallback: `${VOICE}/leg?conversation=${conv.id}`, statusCallbackEvent: 'ringing answered completed' });
    expect((await callRow(call.call_sid)).state).toBe('connecting');

    // The agent's leg reports (its To is the client, so the call is found through ParentCallSid).
    const leg = newSid('CA');
    const legParams = (status: string): Params => ({
      AccountSid: SID,
      CallSid: leg,
      ParentCallSid: call.call_sid,
      From: call.from_number,
      To: `client:${client.text}`,
      CallStatus: status,
    });
    const legPath = `/leg?conversation=${conv.id}`;
    for (const status of ['ringing', 'ringing', 'in-progress', 'in-progress']) expect((await hook(legPath, legParams(status))).status).toBe(204);
    expect((await callRow(call.call_sid)).state).toBe('in_progress');
    const kase = conv.caseId;
    expect(await eventsOf(kase, 'call.ringing')).toHaveLength(1);
    const answered = await eventsOf(kase, 'call.answered');
    expect(answered).toHaveLength(1);
    expect(answered[0]!.actorName).toBe('Avery Agent');

    // The agent hangs up: the Dial's action says so (twice), then the call's own status callback.
    const dialed = callParams(call.call_sid, call.from_number, { DialCallStatus: 'completed', DialCallDuration: '42', DialCallSid: leg });
    const bye = xml(await hook(`/dialed?lang=en&conversation=${conv.id}`, dialed));
    expect(spoken(bye)).toEqual(['Thank you for calling. Goodbye.']);
    expect(bye.children.map((c) => c.name)).toEqual(['Say', 'Hangup']);
    xml(await hook(`/dialed?lang=en&conversation=${conv.id}`, dialed));
    await hook('/status', callParams(call.call_sid, call.from_number, { CallStatus: 'completed', CallDuration: '80' })).expect(204);
    const ended = await eventsOf(kase, 'call.ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]!.data).toMatchObject({ durationSeconds: 42 });
    expect((await conversation(conv.id)).status).toBe('ended');

    // The call's recording (no To in a recording callback: found by CallSid), retried: one entry.
    const recording = fake.addRecording(SID);
    const rec = { AccountSid: SID, CallSid: call.call_sid, RecordingSid: recording.sid, RecordingUrl: recording.url, RecordingStatus: 'completed', RecordingDuration: '41', RecordingChannels: '2' };
    const results = await Promise.all([1, 2, 3].map(() => hook('/recording?kind=call', rec)));
    results.forEach((r) => expect(r.status).toBe(204));
    const recorded = await eventsOf(kase, 'call.recording');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.data).toMatchObject({ recordingSid: recording.sid, durationSeconds: 41, playable: true });
    const calls = (await as(avery).get(`/api/cases/${kase}/calls`)).body.calls as CallSummary[];
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ state: 'completed', agentName: 'Avery Agent', durationSeconds: 42, recordingKind: 'call', service: 'Report a pothole' });
  });

  it('Spanish: the menu and the hold in Spanish; voicemail with its recording and transcription once each, played only to staff who may see it', async () => {
    const sid = newSid('CA');
    const from = '+15557770004';
    xml(await hook('', callParams(sid, from)));
    // Spanish by voice.
    const menu = xml(await hook('/language?attempt=0', callParams(sid, from, { SpeechResult: 'Español.' })));
    const m = one(menu, 'Gather');
    expect(m.attrs).toMatchObject({ language: 'es-US', action: `${VOICE}/menu?lang=es&attempt=0` });
    expect(spoken(m)).toEqual([
      'Díganos el motivo de su llamada.',
      'Para Solicitar un permiso de estacionamiento residencial, oprima 1.',
      'Para Reportar un bache, oprima 2.',
      'Para cualquier otro asunto, oprima 0 o diga lo que necesita.',
    ]);
    all(m, 'Say').forEach((s) => expect(s.attrs.language).toBe('es-US'));
    // The parking permit: Permits' queue.
    const queued = xml(await hook('/menu?lang=es&attempt=0', callParams(sid, from, { Digits: '1' })));
    expect(one(queued, 'Enqueue').text).toBe(`cb-${groups.Permits}`);
    expect(one(queued, 'Enqueue').attrs.waitUrl).toBe(`${VOICE}/wait?lang=es`);
    expect(spoken(queued)).toEqual(['Gracias. Permanezca en la línea mientras le comunicamos con la próxima persona disponible.']);
    const hold = xml(await hook('/wait?lang=es', callParams(sid, from)));
    expect(spoken(hold)).toEqual([
      'Usted es el próximo en la fila.',
      'Gracias por esperar. Su llamada es importante para nosotros.',
      'Si prefiere que le devolvamos la llamada, oprima 1. Para dejar un mensaje de voz, oprima 2.',
    ]);
    expect(one(hold, 'Gather').attrs.language).toBe('es-US');

    // A key that means nothing keeps them waiting; 2 takes them out of the queue to record a message.
    expect(xml(await hook('/wait-choice?lang=es', callParams(sid, from, { Digits: '5' }))).children.map((c) => c.name)).toEqual(['Say']);
    expect(xml(await hook('/wait-choice?lang=es', callParams(sid, from, { Digits: '2' }))).children.map((c) => c.name)).toEqual(['Leave']);
    const vm = xml(await hook('/enqueued?lang=es', callParams(sid, from, { QueueResult: 'leave', QueueTime: '12' })));
    expect(spoken(vm)[0]).toBe('Deje su mensaje después del tono. Oprima la tecla de numeral cuando termine.');
    expect(one(vm, 'Record').attrs).toMatchObject({
      action: `${VOICE}/recorded?lang=es`,
      finishOnKey: '#',
      playBeep: 'true',
      transcribe: 'true',
      transcribeCallback: `${VOICE}/transcription`,
      recordingStatusCallback: `${VOICE}/recording?kind=voicemail`,
      maxLength: '180',
    });
    const call = await callRow(sid);
    expect(call.state).toBe('voicemail');
    expect((await conversation(call.conversation_id!)).status).toBe('ended');
    const thanks = xml(await hook('/recorded?lang=es', callParams(sid, from, { RecordingDuration: '9', RecordingUrl: 'https://api.twilio.com/x', Digits: '#' })));
    expect(spoken(thanks)).toEqual(['Gracias. Recibimos su mensaje y nos comunicaremos con usted. Adiós.']);
    await hook('/status', callParams(sid, from, { CallStatus: 'completed', CallDuration: '40' })).expect(204);

    // The recording, then its transcription, each retried: one timeline entry each, and one follow-up task.
    const recording = fake.addRecording(SID, Buffer.from('ID3-voicemail-bytes'));
    const rec = { AccountSid: SID, CallSid: sid, RecordingSid: recording.sid, RecordingUrl: recording.url, RecordingStatus: 'completed', RecordingDuration: '9' };
    for (let i = 0; i < 3; i++) await hook('/recording?kind=voicemail', rec).expect(204);
    // What the caller said is masked before it is stored, like any constituent message (issue #11).
    const said = 'Hola, llamo por mi permiso de estacionamiento. Mi seguro social es 123-45-6789.';
    const text = 'Hola, llamo por mi permiso de estacionamiento. Mi seguro social es ***-**-6789.';
    const tr = callParams(sid, from, { RecordingSid: recording.sid, RecordingUrl: recording.url, TranscriptionSid: `TR${'0'.repeat(32)}`, TranscriptionStatus: 'completed', TranscriptionText: said });
    await Promise.all([hook('/transcription', tr).expect(204), hook('/transcription', tr).expect(204)]);
    const detail = await caseOf(call.case_id!);
    expect(detail.events.filter((e) => e.kind === 'call.voicemail')).toHaveLength(1);
    expect(detail.events.filter((e) => e.kind === 'call.transcription').map((e) => e.data.text)).toEqual([text]);
    expect(detail.tasks.filter((t) => t.title === `Return voicemail from ${from}`).map((t) => t.groupId)).toEqual([groups.Permits]);
    expect(detail.groupName).toBe('Permits');

    // Avery works Permits: she sees the call and plays the voicemail; Jordan does not work Permits.
    const [summary] = (await as(avery).get(`/api/cases/${call.case_id}/calls`)).body.calls as CallSummary[];
    expect(summary).toMatchObject({ state: 'voicemail', language: 'es', recordingKind: 'voicemail', transcription: text, recordingUrl: `/api/calls/${call.id}/recording` });
    const played = await as(avery).get(summary!.recordingUrl!).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(played.status).toBe(200);
    expect(played.headers['content-type']).toBe('audio/mpeg');
    expect(played.headers['cache-control']).toBe('private, no-store');
    expect((played.body as Buffer).toString()).toBe('ID3-voicemail-bytes');
    expect((await as(jordan).get(summary!.recordingUrl!)).status).toBe(404);
    expect((await as(jordan).get(`/api/cases/${call.case_id}/calls`)).body.calls).toEqual([]);
    expect((await h.http.get(summary!.recordingUrl!)).status).toBe(401);
    expect(await count(sql`select count(*)::int as n from audit_log where action = 'call.recording_play'`)).toBe(1);

    // A recording URL that is not this account's on Twilio's host is never stored or fetched.
    const other = await callIn('+15557770005', 'es', { Digits: '1' });
    await hook('/wait-choice?lang=es', callParams(other.sid, '+15557770005', { SpeechResult: 'quiero dejar un mensaje de voz' })).expect(200);
    xml(await hook('/enqueued?lang=es', callParams(other.sid, '+15557770005', { QueueResult: 'leave' })));
    const evil = { AccountSid: SID, CallSid: other.sid, RecordingSid: newSid('RE'), RecordingUrl: 'https://evil.example/2010-04-01/Accounts/x/Recordings/y', RecordingStatus: 'completed', RecordingDuration: '3' };
    await hook('/recording?kind=voicemail', evil).expect(204);
    expect((await eventsOf(other.case_id!, 'call.voicemail'))[0]!.data).toMatchObject({ playable: false });
    expect((await as(avery).get(`/api/calls/${other.id}/recording`)).status).toBe(404);
  });

  it('"call me back" ends the call and gives the group a task to ring the number', async () => {
    const from = '+15557770006';
    const call = await callIn(from, 'en', { Digits: '0' });
    expect((await conversation(call.conversation_id!)).groupId).toBe(groups.General);
    expect(xml(await hook('/wait-choice?lang=en', callParams(call.sid, from, { Digits: '1' }))).children.map((c) => c.name)).toEqual(['Leave']);
    const leave = callParams(call.sid, from, { QueueResult: 'leave', QueueTime: '20' });
    const bye = xml(await hook('/enqueued?lang=en', leave));
    expect(spoken(bye)).toEqual(['Thank you. We will call you back at the number you are calling from. Goodbye.']);
    expect(bye.children.map((c) => c.name)).toEqual(['Say', 'Hangup']);
    xml(await hook('/enqueued?lang=en', leave)); // retried
    expect((await callRow(call.sid)).state).toBe('callback');
    expect((await conversation(call.conversation_id!)).status).toBe('ended');
    const detail = await caseOf(call.case_id!);
    expect(detail.tasks.filter((t) => t.title === `Call back ${from}`).map((t) => t.groupId)).toEqual([groups.General]);
    expect(detail.events.filter((e) => e.kind === 'call.callback_requested')).toHaveLength(1);
    // It is in "My work" for the group's agents.
    const work = (await as(jordan).get('/api/my-work')).body as { tasks: { title: string; forGroup: boolean }[] };
    expect(work.tasks).toEqual(expect.arrayContaining([{ ...work.tasks.find((t) => t.title === `Call back ${from}`)!, forGroup: true }]));
  });

  it('when Twilio refuses to put a call through, the caller keeps their place in line', async () => {
    const from = '+15557770009';
    const call = await callIn(from, 'en', { Digits: '0' });
    fake.failNext({ status: 400, code: 21220, message: 'Call is not in-progress. Cannot redirect.' });
    await as(avery).post(`/api/conversations/${call.conversation_id}/claim`).expect(200);
    await eventually(async () => (await conversation(call.conversation_id!)).status, 'queued');
    expect(await callRow(call.sid)).toMatchObject({ state: 'queued', agent_id: null });
    expect((await eventsOf(call.case_id!, 'call.bridge_failed')).map((e) => e.data.code)).toEqual([21220]);
    await hook('/status', callParams(call.sid, from, { CallStatus: 'completed' })).expect(204);
    expect((await callRow(call.sid)).state).toBe('abandoned');
  });

  it('routing gives a call only to an available agent with room; on a phone number; a missed call goes back in line', async () => {
    // Jordan takes calls on his phone; Avery is away. General routes automatically.
    await as(jordan).put('/api/voice/preference', { phoneNumber: '+15550009999' }).expect(200);
    expect((await as(jordan).put('/api/voice/preference', { phoneNumber: '555' })).status).toBe(400);
    await Promise.all([h.staffSocket(avery), h.staffSocket(jordan)]);
    await as(avery).put('/api/me/presence', { presence: 'away' }).expect(200);
    await as(jordan).put('/api/me/presence', { presence: 'available' }).expect(200);
    const before = fake.callUpdates().length;
    await as(admin).put(`/api/admin/groups/${groups.General}`, { routing: 'least_busy' }).expect(200);

    const from = '+15557770007';
    const call = await callIn(from, 'en', { Digits: '2' });
    await eventually(async () => (await callRow(call.sid)).state, 'connecting');
    expect((await conversation(call.conversation_id!)).assigneeName).toBe('Jordan Agent');
    const dial = one(twiml(fake.callUpdates().slice(before).find((u) => u.callSid === call.sid)!.form.Twiml!), 'Dial');
    expect(dial.attrs.callerId).toBe(NUMBER);
    expect(one(dial, 'Number').text).toBe('+15550009999');

    // A second caller waits: Jordan's one call slot is taken and Avery is away.
    const next = await callIn('+15557770008', 'en', { Digits: '0' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await callRow(next.sid)).state).toBe('queued');

    // Jordan lets it ring out: the caller hears so and waits again, Jordan is set away.
    const missed = callParams(call.sid, from, { DialCallStatus: 'no-answer', DialCallDuration: '0' });
    const back = xml(await hook(`/dialed?lang=en&conversation=${call.conversation_id}`, missed));
    expect(spoken(back)).toEqual(['Sorry, that person could not take your call. Please keep holding.']);
    expect(one(back, 'Enqueue').text).toBe(`cb-${groups.General}`);
    expect((await callRow(call.sid)).state).toBe('queued');
    expect(await eventsOf(call.case_id!, 'call.missed')).toHaveLength(1);
    const conv = await conversation(call.conversation_id!);
    expect(conv).toMatchObject({ status: 'queued', assigneeId: null });
    await eventually(async () => ((await as(admin).get('/api/staff')).body.staff as { id: string; presence: string }[]).find((s) => s.id === jordan.me.id)?.presence, 'away');
    // A retry of the same report changes nothing more.
    xml(await hook(`/dialed?lang=en&conversation=${call.conversation_id}`, missed));
    expect(await eventsOf(call.case_id!, 'call.missed')).toHaveLength(1);

    // Both hang up while waiting: abandoned.
    await hook('/status', callParams(call.sid, from, { CallStatus: 'completed' })).expect(204);
    await hook('/status', callParams(next.sid, '+15557770008', { CallStatus: 'completed' })).expect(204);
    expect([(await callRow(call.sid)).state, (await callRow(next.sid)).state]).toEqual(['abandoned', 'abandoned']);
    await as(admin).put(`/api/admin/groups/${groups.General}`, { routing: 'manual' }).expect(200);
  });

  it('browser calling: admins set the API key (secret never returned); agents get a token scoped to themselves', async () => {
    const missing = await as(avery).get('/api/voice/token');
    expect(missing.status).toBe(503);
    expect(missing.body.error.message).toMatch(/API key SID.*API key secret.*TwiML App SID/);
    const settings = { apiKeySid: KEY_SID, apiKeySecret: KEY_SECRET, twimlAppSid: APP_SID };
    expect((await as(avery).put('/api/admin/twilio/voice', settings)).status).toBe(403);
    const bad = await as(admin).put('/api/admin/twilio/voice', { ...settings, twimlAppSid: 'AP123' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toEqual(['twimlAppSid']);
    const saved = (await as(admin).put('/api/admin/twilio/voice', settings).expect(200)).body as VoiceSettings;
    expect(saved).toEqual({ phoneReady: true, browserReady: true, apiKeySid: KEY_SID, hasApiKeySecret: true, twimlAppSid: APP_SID, missing: [] });
    expect(JSON.stringify((await as(admin).get('/api/admin/twilio/voice')).body)).not.toContain(KEY_SECRET);
    const stored = rowsOf<{ s: string }>(await h.server.database.db.execute(sql`select twilio_api_key_secret_sealed as s from agencies where slug = 'springfield'`));
    expect(stored[0]!.s).not.toContain(KEY_SECRET);
    // The existing Twilio settings are untouched.
    expect((await as(admin).get('/api/admin/twilio')).body).toMatchObject({ configured: true, missing: [] });

    expect((await as(admin).get('/api/voice/token')).status).toBe(403);
    expect((await h.http.get('/api/voice/token')).status).toBe(401);
    const res = await as(avery).get('/api/voice/token').expect(200);
    const body = res.body as VoiceToken;
    expect(body.identity).toBe(`agent_${avery.me.id.replace(/-/g, '')}`);
    const claims = jwt.verify(body.token, KEY_SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload & {
      grants: { identity: string; voice: { incoming: { allow: boolean }; outgoing: { application_sid: string } } };
    };
    expect(claims.iss).toBe(KEY_SID);
    expect(claims.sub).toBe(SID);
    expect(claims.grants).toEqual({ identity: body.identity, voice: { incoming: { allow: true }, outgoing: { application_sid: APP_SID } } });
    expect(() => jwt.verify(body.token, 'another-secret-entirely-000000000')).toThrow();
    // Each agent's token names only them.
    const jordans = (await as(jordan).get('/api/voice/token').expect(200)).body as VoiceToken;
    expect(jordans.identity).toBe(`agent_${jordan.me.id.replace(/-/g, '')}`);
    expect(jordans.identity).not.toBe(body.identity);
  });
  it('ending a call in the console hangs it up through Twilio; a call takes internal notes only', async () => {
    const from = '+15557770010';
    const call = await callIn(from, 'en', { Digits: '0' });
    await as(avery).post(`/api/conversations/${call.conversation_id}/claim`).expect(200);
    await eventually(async () => (await callRow(call.sid)).state, 'connecting');
    const leg = newSid('CA');
    await hook(`/leg?conversation=${call.conversation_id}`, { AccountSid: SID, CallSid: leg, ParentCallSid: call.sid, From: from, To: 'client:x', CallStatus: 'in-progress' }).expect(204);
    expect((await callRow(call.sid)).state).toBe('in_progress');

    // A reply to the caller goes nowhere: refused, and nothing stored; an internal note is fine.
    const reply = await as(avery).post(`/api/conversations/${call.conversation_id}/messages`, { clientMessageId: crypto.randomUUID(), body: 'Hello?', visibility: 'public' });
    expect(reply.status).toBe(409);
    expect(reply.body.error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/^Calls take internal notes only/) });
    await as(avery).post(`/api/conversations/${call.conversation_id}/messages`, { clientMessageId: crypto.randomUUID(), body: 'Caller asks about a permit', visibility: 'internal' }).expect(201);
    expect(await count(sql`select count(*)::int as n from messages where conversation_id = ${call.conversation_id} and visibility = 'public'`)).toBe(0);

    const before = fake.callUpdates().length;
    await as(avery).post(`/api/conversations/${call.conversation_id}/end`).expect(200);
    await eventually(() => fake.callUpdates().slice(before).filter((u) => u.callSid === call.sid).map((u) => u.form.Status), ['completed']);
    await eventually(async () => (await callRow(call.sid)).state, 'completed');
    const ended = await eventsOf(call.case_id!, 'call.ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ actorName: 'Avery Agent', data: { endedBy: 'agent' } });
    // Twilio's own reports of the end afterwards change nothing.
    await hook('/status', callParams(call.sid, from, { CallStatus: 'completed', CallDuration: '20' })).expect(204);
    xml(await hook(`/dialed?lang=en&conversation=${call.conversation_id}`, callParams(call.sid, from, { DialCallStatus: 'completed', DialCallDuration: '15' })));
    expect(await eventsOf(call.case_id!, 'call.ended')).toHaveLength(1);
    expect(await eventsOf(call.case_id!, 'call.abandoned')).toHaveLength(0);
    // Ending again: no second hang-up.
    await as(avery).post(`/api/conversations/${call.conversation_id}/end`).expect(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.callUpdates().slice(before).filter((u) => u.callSid === call.sid)).toHaveLength(1);
  });

  it('calls from the browser: only staff who take calls, only to the agency\'s constituents, logged on the case once', async () => {
    const OUT = `${VOICE}/outgoing`;
    const out = (params: Params, opts: { signature?: string; token?: string; path?: string } = {}) =>
      h.http
        .post(`/webhooks/twilio/voice/outgoing${opts.path ?? ''}`)
        .type('form')
        .set('X-Twilio-Signature', opts.signature ?? twilio.getExpectedTwilioSignature(opts.token ?? TOKEN, `${OUT}${opts.path ?? ''}`, params))
        .send(params);
    const identity = (s: StaffSession) => `client:agent_${s.me.id.replace(/-/g, '')}`;
    // A caller who asked to be called back: their number and their case.
    const from = '+15557770011';
    const call = await callIn(from, 'en', { Digits: '0' });
    await hook('/wait-choice?lang=en', callParams(call.sid, from, { Digits: '1' })).expect(200);
    xml(await hook('/enqueued?lang=en', callParams(call.sid, from, { QueueResult: 'leave' })));
    const browserCall = (who: string, to: string, extra: Params = {}): Params => ({
      AccountSid: SID,
      ApplicationSid: APP_SID,
      CallSid: newSid('CA'),
      From: who,
      Caller: who,
      To: to,
      Direction: 'inbound',
      ...extra,
    });

    // Allowed: Avery rings the caller back from their case, shown the agency's number.
    const ok = browserCall(identity(avery), from, { CaseId: call.case_id! });
    const dialled = xml(await out(ok));
    const dial = one(dialled, 'Dial');
    expect(dial.attrs).toMatchObject({ callerId: NUMBER, action: `${VOICE}/outgoing/ended?case=${call.case_id}`, method: 'POST' });
    expect(one(dial, 'Number').text).toBe(from);
    xml(await out(ok)); // Twilio retries: one entry
    const placed = await eventsOf(call.case_id!, 'call.outgoing');
    expect(placed).toHaveLength(1);
    expect(placed[0]).toMatchObject({ actorName: 'Avery Agent', data: { to: from, callSid: ok.CallSid } });
    // It ended: how and how long, once.
    const endedParams = { ...ok, DialCallStatus: 'completed', DialCallDuration: '63', DialCallSid: newSid('CA'), CallStatus: 'completed' };
    for (let i = 0; i < 2; i++) xml(await out(endedParams, { path: `/ended?case=${call.case_id}` }));
    expect((await eventsOf(call.case_id!, 'call.outgoing_ended')).map((e) => e.data)).toEqual([{ status: 'completed', durationSeconds: 63, callSid: ok.CallSid }]);

    // A number that texted in (an SMS identity) is a constituent's too; no case named: nothing logged.
    await h.server.database.db.execute(sql`
      insert into channel_identities (agency_id, constituent_id, channel, address)
      select agency_id, id, 'sms', '+15557770099' from constituents where phone = ${from} limit 1`);
    const texted = xml(await out(browserCall(identity(jordan), '+15557770099')));
    expect(one(texted, 'Number').text).toBe('+15557770099');
    expect(one(texted, 'Dial').attrs.action).toBe(`${VOICE}/outgoing/ended`);
    // A case of someone else is not logged on (and does not make the call any less allowed or more).
    const other = await callIn('+15557770012', 'en', { Digits: '0' });
    const wrongCase = xml(await out(browserCall(identity(avery), from, { CaseId: other.case_id! })));
    expect(one(wrongCase, 'Dial').attrs.action).toBe(`${VOICE}/outgoing/ended`);
    expect(await eventsOf(other.case_id!, 'call.outgoing')).toHaveLength(0);

    // Refused (toll-fraud protection): said so and hung up, nothing dialled.
    const refusedCases: [string, Params][] = [
      ['a number that is no constituent\'s', browserCall(identity(avery), '+19005550123')],
      ['a premium number in another form', browserCall(identity(avery), '19005550123')],
      ['an admin', browserCall(identity(admin), from)],
      ['an identity nobody has', browserCall(`client:agent_${'0'.repeat(32)}`, from)],
      ['a phone, not a browser', browserCall('+15557770011', from)],
      ['a client that is not an agent', browserCall('client:support', from)],
      ['no number at all', browserCall(identity(avery), '')],
    ];
    for (const [, params] of refusedCases) {
      const refused = xml(await out(params));
      expect(refused.children.map((c) => c.name)).toEqual(['Say', 'Hangup']);
      expect(spoken(refused)).toEqual(['This call cannot be placed. Goodbye.']);
    }
    // A disabled account no longer calls.
    await h.server.database.db.execute(sql`update users set disabled_at = now() where id = ${jordan.me.id}`);
    expect(all(xml(await out(browserCall(identity(jordan), from))), 'Dial')).toHaveLength(0);
    await h.server.database.db.execute(sql`update users set disabled_at = null where id = ${jordan.me.id}`);
    expect(await count(sql`select count(*)::int as n from audit_log where action = 'call.outgoing' and outcome = 'denied'`)).toBe(refusedCases.length + 1);

    // Unsigned, forged, another account's token, an account we do not know: 403.
    expect((await h.http.post('/webhooks/twilio/voice/outgoing').type('form').send(ok)).status).toBe(403);
    expect((await out(ok, { signature: 'bm90IGEgc2lnbmF0dXJl' })).status).toBe(403);
    expect((await out(ok, { token: 'f0'.repeat(16) })).status).toBe(403);
    expect((await out({ ...ok, AccountSid: `AC${'00'.repeat(16)}` })).status).toBe(403);
    expect((await out({ ...ok, To: '+19005550123' }, { signature: twilio.getExpectedTwilioSignature(TOKEN, OUT, ok) })).status).toBe(403);
    expect((await out(endedParams, { path: '/ended', token: 'f0'.repeat(16) })).status).toBe(403);
    expect((await out({ ...ok, CallSid: 'CA1' })).status).toBe(400);
  });

  it('outside business hours the caller is told the office is closed and offered a callback or a voicemail, in English and Spanish', async () => {
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    await h.server.database.db.execute(
      sql`update agencies set holidays = ${JSON.stringify([day(-1), day(0), day(1)])}::jsonb where slug = 'springfield'`,
    );
    try {
      // English: no answer to the options means a voicemail.
      const sid = newSid('CA');
      const from = '+15557770013';
      xml(await hook('', callParams(sid, from)));
      const closed = xml(await hook('/language?attempt=0', callParams(sid, from, { Digits: '1' })));
      expect(spoken(closed)).toEqual([
        'Our office is closed right now.',
        'To have us call you back when we are open, press 1. To leave a message, press 2, or stay on the line.',
      ]);
      expect(one(closed, 'Gather').attrs).toMatchObject({ action: `${VOICE}/closed?lang=en&attempt=0`, language: 'en-US', numDigits: '1' });
      expect(one(closed, 'Redirect').text).toBe(`${VOICE}/closed?lang=en&attempt=0&default=voicemail`);
      expect(all(closed, 'Enqueue')).toHaveLength(0);
      const vm = xml(await hook('/closed?lang=en&attempt=0&default=voicemail', callParams(sid, from)));
      expect(spoken(vm)[0]).toBe('Please leave your message after the tone. Press the pound key when you are done.');
      expect(one(vm, 'Record').attrs).toMatchObject({ transcribe: 'true', recordingStatusCallback: `${VOICE}/recording?kind=voicemail` });
      xml(await hook('/closed?lang=en&attempt=0&default=voicemail', callParams(sid, from))); // retried
      const call = await callRow(sid);
      expect(call.state).toBe('voicemail');
      expect((await conversation(call.conversation_id!)).status).toBe('ended');
      expect((await eventsOf(call.case_id!, 'call.received'))[0]!.data).toMatchObject({ closed: true });
      expect(await eventsOf(call.case_id!, 'call.voicemail_started')).toHaveLength(1);
      // The recording still lands on the case with its follow-up task.
      const recording = fake.addRecording(SID);
      await hook('/recording?kind=voicemail', { AccountSid: SID, CallSid: sid, RecordingSid: recording.sid, RecordingUrl: recording.url, RecordingStatus: 'completed', RecordingDuration: '5' }).expect(204);
      expect((await caseOf(call.case_id!)).tasks.map((t) => t.title)).toContain(`Return voicemail from ${from}`);

      // Spanish: a key that means nothing is asked again, then 1 is a callback.
      const sid2 = newSid('CA');
      const from2 = '+15557770014';
      xml(await hook('', callParams(sid2, from2)));
      const cerrado = xml(await hook('/language?attempt=0', callParams(sid2, from2, { Digits: '2' })));
      expect(spoken(cerrado)).toEqual([
        'Nuestra oficina está cerrada en este momento.',
        'Si desea que le devolvamos la llamada cuando estemos abiertos, oprima 1. Para dejar un mensaje, oprima 2 o permanezca en la línea.',
      ]);
      all(cerrado, 'Say').forEach((x) => expect(x.attrs.language).toBe('es-US'));
      expect(one(cerrado, 'Gather').attrs.action).toBe(`${VOICE}/closed?lang=es&attempt=0`);
      const again = xml(await hook('/closed?lang=es&attempt=0', callParams(sid2, from2, { Digits: '7' })));
      expect(spoken(again)[0]).toBe('Disculpe, no le entendí.');
      expect(one(again, 'Gather').attrs.action).toBe(`${VOICE}/closed?lang=es&attempt=1`);
      const cb = xml(await hook('/closed?lang=es&attempt=1', callParams(sid2, from2, { SpeechResult: 'que me devuelvan la llamada' })));
      expect(spoken(cb)).toEqual(['Gracias. Le devolveremos la llamada al número desde el que llama cuando estemos abiertos. Adiós.']);
      expect(cb.children.map((c) => c.name)).toEqual(['Say', 'Hangup']);
      const call2 = await callRow(sid2);
      expect(call2.state).toBe('callback');
      const detail = await caseOf(call2.case_id!);
      expect(detail.tasks.filter((t) => t.title === `Call back ${from2}`)).toHaveLength(1);
      expect(detail.events.filter((e) => e.kind === 'call.callback_requested')[0]!.data).toMatchObject({ closed: true });
      // Nobody was queued.
      expect(await count(sql`select count(*)::int as n from conversations where id in (${call.conversation_id}, ${call2.conversation_id}) and status <> 'ended'`)).toBe(0);
    } finally {
      await h.server.database.db.execute(sql`update agencies set holidays = '[]'::jsonb where slug = 'springfield'`);
    }
    // Open again: the menu as before.
    const open = await callIn('+15557770015', 'en', { Digits: '0' });
    expect(open.state).toBe('queued');
  });
});
