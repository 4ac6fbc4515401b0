import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import twilio from 'twilio';
import type { Browser, Page } from 'playwright-core';
import { rowsOf } from '../../server/src/db/client.js';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { FakeTwilio } from '../support/fake-twilio.js';
import { DEMO_PASSWORD, eventually, staffApi, startTestServer, type Harness } from '../support/harness.js';

jest.setTimeout(90_000);

const SID = `AC${'e5'.repeat(16)}`;
const TOKEN = 'a6'.repeat(16);
const NUMBER = '+15550003333';
const BASE = 'https://calls.springfield.example';

// A caller leaves a voicemail; another waits; an agent hears the voicemail, reads its transcription and takes
// the waiting call in the console (Twilio is a local fake: the call is put through by its REST API).
describe('phone calls in the console, in Chromium', () => {
  let h: Harness;
  let fake: FakeTwilio;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    fake = (await FakeTwilio.start()).addAccount(SID, TOKEN);
    h = await startTestServer('pglite', { serveWeb: true, env: { TWILIO_API_BASE_URL: fake.url } });
    browser = await launchBrowser();
    const admin = await h.login('admin@demo.gov');
    await staffApi(h, admin).put('/api/admin/twilio', { accountSid: SID, authToken: TOKEN, publicBaseUrl: BASE, numbers: [NUMBER] }).expect(200);
    page = await (await browser.newContext({ viewport: { width: 1400, height: 860 } })).newPage();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await fake?.close();
  });

  let seq = 0;
  const hook = (path: string, params: Record<string, string>) =>
    h.http
      .post(`/webhooks/twilio/voice${path}`)
      .type('form')
      .set('X-Twilio-Signature', twilio.getExpectedTwilioSignature(TOKEN, `${BASE}/webhooks/twilio/voice${path}`, params))
      .send(params);
  async function callIn(from: string) {
    const CallSid = `CA${(++seq).toString(16).padStart(32, '0')}`;
    const p = { AccountSid: SID, CallSid, From: from, To: NUMBER, CallStatus: 'in-progress' };
    await hook('', p).expect(200);
    await hook('/language?attempt=0', { ...p, Digits: '1' }).expect(200); // no service by phone: straight to the queue
    const [row] = rowsOf<{ case_id: string; conversation_id: string }>(
      await h.server.database.db.execute(sql`select case_id, conversation_id from calls where call_sid = ${CallSid}`),
    );
    return { p, ...row! };
  }

  it('plays a voicemail with its transcription on the case, and taking a waiting call puts it through', async () => {
    const vm = await callIn('+15557778881');
    await hook('/wait-choice?lang=en', { ...vm.p, Digits: '2' }).expect(200);
    await hook('/enqueued?lang=en', { ...vm.p, QueueResult: 'leave' }).expect(200);
    const rec = fake.addRecording(SID, Buffer.from('ID3-browser-voicemail'));
    await hook('/recording?kind=voicemail', { AccountSid: SID, CallSid: vm.p.CallSid, RecordingSid: rec.sid, RecordingUrl: rec.url, RecordingStatus: 'completed', RecordingDuration: '7' }).expect(204);
    await hook('/transcription', { ...vm.p, RecordingSid: rec.sid, TranscriptionStatus: 'completed', TranscriptionText: 'Please call me about my trash pickup.' }).expect(204);

    await page.goto(`${h.url}/console`);
    await page.getByLabel('Email').fill('agent@demo.gov');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByText('Live', { exact: true }).waitFor();

    await page.goto(`${h.url}/console/cases/${vm.case_id}`);
    const calls = page.getByRole('region', { name: 'Calls' });
    await calls.getByText('Left a voicemail').waitFor();
    await calls.getByText('Please call me about my trash pickup.').waitFor();
    const src = await calls.locator('audio').getAttribute('src');
    expect(src).toMatch(/^\/api\/calls\/[0-9a-f-]{36}\/recording$/);
    // The player's source streams the recording to this signed-in agent.
    const fetched = await page.evaluate(async (url) => {
      const r = await fetch(url!);
      return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
    }, src);
    expect(fetched).toEqual({ status: 200, type: 'audio/mpeg', body: 'ID3-browser-voicemail' });
    await page.getByText('Voicemail transcription: “Please call me about my trash pickup.”').waitFor();
    await page.getByText(/The caller chose to leave a voicemail/).waitFor();
    expect(await axeViolations(page)).toEqual([]);

    // A caller waiting in the queue: taking the conversation puts the call through to this agent's browser.
    const live = await callIn('+15557778882');
    await page.goto(`${h.url}/console/conversations/${live.conversation_id}`);
    await page.getByRole('region', { name: 'Calls' }).getByText('Waiting in the queue').waitFor();
    await page.getByRole('button', { name: 'Take', exact: true }).click();
    await eventually(() => fake.callUpdates().filter((u) => u.callSid === live.p.CallSid).length, 1);
    expect(fake.callUpdates().at(-1)!.form.Twiml).toMatch(/<Client [^>]*>agent_[0-9a-f]{32}<\/Client>/);
    await page.getByRole('region', { name: 'Calls' }).getByText('Ringing the agent').waitFor({ timeout: 10_000 });
  });
});
