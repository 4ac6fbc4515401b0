import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import twilio from 'twilio';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
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
    // No service in the phone menu: callers go straight to the queue.
    await h.server.database.db.execute(sql`update service_definitions set channels = array_remove(channels, 'voice')`);
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
    await page.getByText('Live', { exact: true }).waitFor(); // taken once the page's socket is up (presence grace)
    await page.getByRole('region', { name: 'Calls' }).getByText('Waiting in the queue').waitFor();
    await page.getByRole('button', { name: 'Take', exact: true }).click();
    await eventually(() => fake.callUpdates().filter((u) => u.callSid === live.p.CallSid).length, 1);
    expect(fake.callUpdates().at(-1)!.form.Twiml).toMatch(/<Client [^>]*>agent_[0-9a-f]{32}<\/Client>/);
    await page.getByRole('region', { name: 'Calls' }).getByText('Ringing the agent').waitFor({ timeout: 10_000 });

    // A call takes internal notes only: the composer says so and offers nothing else.
    await page.getByText('A phone call: the caller cannot read replies, so this writes internal notes only.').waitFor();
    expect(await page.getByRole('radio', { name: 'Reply to constituent' }).isDisabled()).toBe(true);
    expect(await page.getByRole('radio', { name: 'Internal note' }).isChecked()).toBe(true);
    expect(await axeViolations(page)).toEqual([]);
    // Ending it hangs the call up (no last message: nobody could read it).
    await page.getByRole('button', { name: 'End conversation' }).click();
    const dialog = page.getByRole('dialog', { name: 'End conversation' });
    await dialog.getByText('Ending this conversation hangs up the call.').waitFor();
    await dialog.getByRole('button', { name: 'End conversation' }).click();
    await eventually(() => fake.callUpdates().filter((u) => u.callSid === live.p.CallSid).map((u) => u.form.Status ?? 'twiml'), ['twiml', 'completed']);
    await page.getByRole('region', { name: 'Calls' }).getByText('Completed').waitFor({ timeout: 10_000 });
  });
  it('the browser phone: nothing loads until it is turned on; says what is missing; never leaves the machine; rings, declines, calls back', async () => {
    // Everything beyond loopback is refused: HTTP (Twilio's sounds, its insights gateway) is aborted, and the
    // Voice SDK's signalling WebSocket is answered in the page — first closed, then by a small fake of Twilio's
    // signalling protocol (listen → connected, register → ready, then an invite), so no packet leaves.
    const phoneBrowser = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
    const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
    const blocked: string[] = [];
    const sockets: string[] = [];
    const signalled: { type: string; payload: Record<string, unknown> }[] = [];
    let signalling: 'close' | 'fake' = 'close';
    let gateway: WebSocketRoute | undefined;
    try {
      const ctx = await phoneBrowser.newContext({ viewport: { width: 1400, height: 860 } });
      await ctx.route((url) => !LOOPBACK.has(url.hostname), (route) => {
        blocked.push(route.request().url());
        return route.abort();
      });
      await ctx.routeWebSocket((url) => !LOOPBACK.has(url.hostname), (ws) => {
        sockets.push(ws.url());
        if (signalling === 'close') return void ws.close({ code: 1006, reason: 'blocked by the test' });
        gateway = ws;
        ws.onMessage((raw) => {
          const msg = JSON.parse(String(raw)) as { type: string; payload: Record<string, unknown> };
          signalled.push(msg);
          // The first token "expires" in 11 s: the SDK asks for a new one 10 s before (tokenWillExpire).
          const ttl = signalled.filter((m) => m.type === 'listen').length === 1 ? 11 : 3600;
          if (msg.type === 'listen') ws.send(JSON.stringify({ type: 'connected', payload: { region: 'us1', edge: 'ashburn', token: { identity: 'agent_test', ttl } } }));
          if (msg.type === 'register') ws.send(JSON.stringify({ type: 'ready', payload: {} }));
        });
      });
      const p2 = await ctx.newPage();
      const scripts = new Set<string>();
      const tokenRequests: string[] = [];
      p2.on('request', (r) => {
        if (r.url().endsWith('/api/voice/token')) tokenRequests.push(r.url());
      });
      p2.on('response', (r) => {
        if (/\.js(\?|$)/.test(r.url())) scripts.add(r.url());
      });
      /** Whether any script the page loaded is the Voice SDK (it names Twilio's signalling host). */
      const sdkLoaded = async () => {
        for (const u of scripts) if ((await (await ctx.request.get(u)).text()).includes('voice-js.')) return true;
        return false;
      };

      // A caller asked to be called back: their case is where the agent works.
      const cb = await callIn('+15557778883');
      await hook('/wait-choice?lang=en', { ...cb.p, Digits: '1' }).expect(200);
      await hook('/enqueued?lang=en', { ...cb.p, QueueResult: 'leave' }).expect(200);

      await p2.goto(`${h.url}/console`);
      await p2.getByLabel('Email').fill('agent2@demo.gov');
      await p2.getByLabel('Password').fill(DEMO_PASSWORD);
      await p2.getByLabel('Password').press('Enter');
      await p2.getByText('Live', { exact: true }).waitFor();
      await p2.goto(`${h.url}/console/cases/${cb.case_id}`);
      const calls = p2.getByRole('region', { name: 'Calls' });
      await calls.getByText('Asked for a callback').waitFor();
      await calls.getByText('Turn on the browser phone (at the top of the console) to call back from here.').waitFor();
      await p2.getByRole('status').filter({ hasText: 'Phone off' }).waitFor();
      // Ordinary console use: no SDK, no connection to Twilio.
      expect(await sdkLoaded()).toBe(false);
      expect(sockets).toEqual([]);

      // (a) Browser calling is not set up (no API key yet): it says what is missing, still without the SDK.
      await p2.getByRole('button', { name: 'Turn on browser phone' }).click();
      const problem = p2.getByRole('alert').filter({ hasText: 'The browser phone is not on.' });
      await problem.getByText('Calls in the browser are not set up: missing the API key SID, the API key secret, the TwiML App SID').waitFor();
      await p2.getByRole('status').filter({ hasText: 'Phone not connected' }).waitFor();
      expect(await sdkLoaded()).toBe(false);
      expect(sockets).toEqual([]);
      expect(await axeViolations(p2)).toEqual([]);
      await p2.screenshot({ path: '/tmp/casebridge-phone-missing.png' });

      // (b) Set up, but Twilio cannot be reached (the signalling socket is closed at once): the SDK loaded,
      // it tried Twilio's host only through the test's route, and says so plainly; the console keeps working.
      const admin = await h.login('admin@demo.gov');
      await staffApi(h, admin)
        .put('/api/admin/twilio/voice', { apiKeySid: `SK${'c3'.repeat(16)}`, apiKeySecret: 'voice-api-key-secret-0123456789ab', twimlAppSid: `AP${'d4'.repeat(16)}` })
        .expect(200);
      await p2.getByRole('button', { name: 'Retry phone' }).click();
      await problem.getByText(/Could not reach Twilio/).waitFor({ timeout: 25_000 });
      expect(await sdkLoaded()).toBe(true);
      expect(sockets.length).toBeGreaterThanOrEqual(1);
      sockets.forEach((u) => expect(u).toMatch(/^wss:\/\/voice-js\.[a-z-]+\.twilio\.com\/signal/));
      await p2.getByRole('button', { name: 'Shortcuts' }).click();
      await p2.getByRole('dialog').waitFor();
      await p2.keyboard.press('Escape');
      await calls.getByText('Asked for a callback').waitFor();
      expect(await axeViolations(p2)).toEqual([]);
      await p2.screenshot({ path: '/tmp/casebridge-phone-unreachable.png' });
      await problem.getByRole('button', { name: 'Dismiss' }).click();
      await p2.getByRole('status').filter({ hasText: 'Phone off' }).waitFor();

      // (c) Twilio (faked in the page) accepts it: ready, with this agent's token.
      signalling = 'fake';
      await p2.getByRole('button', { name: 'Turn on browser phone' }).click();
      await p2.getByRole('status').filter({ hasText: 'Phone ready' }).waitFor({ timeout: 15_000 });
      const listen = signalled.find((m) => m.type === 'listen')!;
      const token = JSON.parse(Buffer.from(String(listen.payload.token).split('.')[1]!, 'base64url').toString()) as { grants: { identity: string } };
      expect(token.grants.identity).toMatch(/^agent_[0-9a-f]{32}$/);
      expect(signalled.map((m) => m.type)).toEqual(expect.arrayContaining(['listen', 'register']));
      // Before the token expires the phone fetches a fresh one and hands it to Twilio (a second listen).
      await eventually(() => signalled.filter((m) => m.type === 'listen').length, 2);
      expect(tokenRequests).toHaveLength(4); // (a), (b), turning on, renewing
      const renewed = signalled.filter((m) => m.type === 'listen')[1]!;
      expect(renewed.payload.token).not.toBe(listen.payload.token);
      await p2.getByRole('status').filter({ hasText: 'Phone ready' }).waitFor();
      await p2.screenshot({ path: '/tmp/casebridge-phone-ready.png' });

      // A call rings: an alert with the caller takes focus; Tab reaches Answer then Decline; declining tells
      // Twilio and gives focus back.
      await p2.locator('#inbox-search').focus();
      const invite = (callsid: string) =>
        gateway!.send(JSON.stringify({ type: 'invite', payload: { callsid, sdp: 'v=0\r\n', parameters: { CallSid: callsid, From: '+15557778884', To: 'client:agent_test', AccountSid: SID } } }));
      invite(`CA${'1'.repeat(32)}`);
      const ringing = p2.getByRole('alertdialog', { name: 'Incoming call' });
      await ringing.getByText('From +15557778884').waitFor({ timeout: 10_000 });
      await eventually(() => p2.evaluate(() => document.activeElement?.getAttribute('role')), 'alertdialog');
      expect(await axeViolations(p2)).toEqual([]);
      await p2.screenshot({ path: '/tmp/casebridge-phone-incoming.png' });
      await p2.keyboard.press('Tab');
      expect(await p2.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Answer');
      await p2.keyboard.press('Tab');
      expect(await p2.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Decline');
      await p2.keyboard.press('Enter');
      await ringing.waitFor({ state: 'detached' });
      await eventually(() => signalled.filter((m) => m.type === 'reject').map((m) => m.payload.callsid), [`CA${'1'.repeat(32)}`]);
      expect(await p2.evaluate(() => document.activeElement?.id)).toBe('inbox-search');
      // The caller hangs up while it rings: the alert goes.
      invite(`CA${'2'.repeat(32)}`);
      await ringing.waitFor();
      gateway!.send(JSON.stringify({ type: 'cancel', payload: { callsid: `CA${'2'.repeat(32)}` } }));
      await ringing.waitFor({ state: 'detached' });

      // Call back from the case: the SDK asks Twilio to connect with the number and the case (the TwiML App's
      // voice URL then decides whether the call is allowed; see the server tests); hanging up ends it.
      await calls.getByRole('button', { name: 'Call back +15557778883' }).click();
      const outgoing = await (async () => {
        for (let i = 0; i < 100; i++) {
          const m = signalled.find((x) => x.type === 'invite');
          if (m) return m;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`no invite; signalled ${signalled.map((m) => m.type).join(', ')}`);
      })();
      const params = new URLSearchParams(String((outgoing.payload.twilio as { params?: string }).params));
      expect(Object.fromEntries(params)).toEqual({ To: '+15557778883', CaseId: cb.case_id });
      const inCall = p2.getByRole('region', { name: /with \+15557778883/ });
      await inCall.getByText('Calling…').waitFor();
      expect(await axeViolations(p2)).toEqual([]);
      await inCall.getByRole('button', { name: 'Hang up' }).click();
      await inCall.waitFor({ state: 'detached' });
      await eventually(() => signalled.some((m) => m.type === 'hangup'), true);
      expect(blocked.every((u) => !new URL(u).hostname.endsWith('127.0.0.1'))).toBe(true);
      await ctx.close();
    } finally {
      await phoneBrowser.close();
    }
  });
});
