import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import twilio from 'twilio';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { FakeTwilio } from '../support/fake-twilio.js';
import { DEMO_PASSWORD, eventually, staffApi, startTestServer, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

jest.setTimeout(90_000);

const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

const SID = `AC${'c3'.repeat(16)}`;
const TOKEN = 'd4'.repeat(16);
const NUMBER = '+15550001111';
const BASE = 'https://cases.springfield.example';

// A constituent texts the agency number; an agent answers from the console; Twilio (a local fake) carries it.
describe('texting with an agent, end to end in Chromium', () => {
  let h: Harness;
  let fake: FakeTwilio;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    fake = (await FakeTwilio.start()).addAccount(SID, TOKEN);
    h = await startTestServer('pglite', { serveWeb: true, env: { TWILIO_API_BASE_URL: fake.url } });
    browser = await launchBrowser();
    const admin = await h.login('admin@demo.gov');
    const res = await staffApi(h, admin).put('/api/admin/twilio', { accountSid: SID, authToken: TOKEN, publicBaseUrl: BASE, numbers: [NUMBER] });
    expect(res.status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await browser?.close();
    await h?.close();
    await fake?.close();
  });

  async function newPage(): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    contexts.push(ctx);
    return ctx.newPage();
  }

  let seq = 0;
  const signed = (path: string, params: Record<string, string>) =>
    h.http
      .post(path)
      .type('form')
      .set('X-Twilio-Signature', twilio.getExpectedTwilioSignature(TOKEN, `${BASE}${path}`, params))
      .send(params);
  const inbound = (from: string, body: string) =>
    signed('/webhooks/twilio/sms', { AccountSid: SID, MessageSid: `SM${(++seq).toString(16).padStart(32, 'a')}`, From: from, To: NUMBER, Body: body });
  const sidOf = async (body: string) => {
    for (let i = 0; i < 100; i++) {
      const rows = ((await h.server.database.db.execute(sql`select external_id as sid from messages where body = ${body}`)) as unknown as {
        rows: { sid: string | null }[];
      }).rows;
      if (rows[0]?.sid) return rows[0].sid;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no MessageSid for ${body}`);
  };

  it('inbound text → queued → taken in the console → reply reaches Twilio → delivered shows live; a failure can be sent again', async () => {
    const a = await newPage();
    await a.goto(`${h.url}/console`);
    await a.getByLabel('Email').fill('agent@demo.gov');
    await a.getByLabel('Password').fill(DEMO_PASSWORD);
    await a.getByLabel('Password').press('Enter');
    await a.getByText('Live', { exact: true }).waitFor();

    const from = '+15557654321';
    expect((await inbound(from, 'The bus shelter on 5th is broken')).status).toBe(200);
    await a.getByRole('button', { name: `Take conversation with ${from}` }).click();
    await a.getByRole('heading', { name: from, level: 1 }).waitFor();
    await a.getByText('The bus shelter on 5th is broken').waitFor();

    const composer = a.getByLabel('Reply to the constituent');
    await composer.fill('Thanks, a crew will fix it this week.');
    await composer.press('Enter');
    await a.getByText('Text queued').waitFor();
    await eventually(() => fake.sentMessages().map((m) => [m.From, m.To, m.Body]), [[NUMBER, from, 'Thanks, a crew will fix it this week.']]);
    const sid = await sidOf('Thanks, a crew will fix it this week.');
    expect((await signed('/webhooks/twilio/sms/status', { AccountSid: SID, MessageSid: sid, From: NUMBER, To: from, MessageStatus: 'delivered' })).status).toBe(204);
    await a.getByText('Text delivered').waitFor();

    // Twilio refuses the next one: it stays, marked with the code, and goes out when sent again.
    fake.failNext({ status: 429, code: 20429, message: 'Too Many Requests' });
    await composer.fill('Also: is anyone hurt?');
    await composer.press('Enter');
    await a.getByText('Text not delivered (error 20429): Too Many Requests').waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.screenshot({ path: join(shots, 'console-sms-delivery.png') });
    await a.getByRole('button', { name: 'Send text again' }).click();
    await a.getByText('Text queued').waitFor();
    expect(fake.sentMessages().map((m) => m.Body)).toEqual(['Thanks, a crew will fix it this week.', 'Also: is anyone hurt?']);
  });

  it('a web chat continues by text from the widget, keyboard only, with 0 axe violations', async () => {
    const page = await newPage();
    await page.goto(`${h.url}/demo`);
    await page.getByRole('button', { name: 'Chat with us' }).click();
    const widget = page.frameLocator('iframe[title="Chat"]');
    await widget.getByLabel('Your name').fill('Texting Tess');
    await widget.getByLabel('Your message (optional)').fill('Question about my permit');
    await widget.getByRole('button', { name: 'Start chat' }).click();
    await widget.getByRole('log').waitFor();
    const toggle = widget.getByRole('button', { name: 'Continue by text' });
    await toggle.focus();
    await page.keyboard.press('Enter');
    const phone = widget.getByLabel('Mobile number');
    await phone.fill('555 12');
    await phone.press('Enter');
    await widget.getByRole('alert').filter({ hasText: 'Enter a mobile number like' }).waitFor();
    await phone.fill('(555) 010-4477');
    await phone.press('Enter');
    await widget.getByText('We will text you at +15550104477. You can close this window.').waitFor();
    await eventually(() => fake.sentMessages().filter((m) => m.To === '+15550104477').length, 1);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'widget-continue-by-text.png') });
  });
});
