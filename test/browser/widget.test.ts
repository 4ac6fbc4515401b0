import { createServer, type Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { eventually, startTestServer, uuid, type ClientSocket, type Harness, type StaffSession } from '../support/harness.js';
import { freePort, repoRoot } from '../support/process.js';
import { startSmtp } from '../support/smtp.js';

// Real browsers and several servers: slower than the API tests.
jest.setTimeout(60_000);

const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

describe('the chat widget on an agency page, in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let agentSession: StaffSession;
  let agent: ClientSocket;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer('pglite', { serveWeb: true, env: { SMTP_URL: smtp.url } });
    browser = await launchBrowser();
    agentSession = await h.login('agent@demo.gov');
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await smtp?.close();
  });
  beforeEach(async () => {
    // An agent is online, so live chat is open.
    agent = await h.staffSocket(agentSession);
    ctx = await browser.newContext();
    page = await ctx.newPage();
  });
  afterEach(async () => {
    await ctx?.close();
    agent?.close();
  });

  const widget = (): FrameLocator => page.frameLocator('iframe[title="Chat"]');
  const shot = (name: string) => page.screenshot({ path: join(shots, `widget-${name}.png`) });
  const agentSend = (conversationId: string, body: string) =>
    agent.emitWithAck('message:send', { conversationId, clientMessageId: uuid(), body });
  async function latestConversationId(): Promise<string> {
    const list = await h.http.get('/api/conversations').set('Cookie', agentSession.cookie);
    return list.body.conversations[0].id as string;
  }
  async function openAndStart(name: string, first?: string) {
    await page.goto(`${h.url}/demo`);
    await page.getByRole('button', { name: 'Chat with us' }).click();
    const w = widget();
    await w.getByLabel('Your name').fill(name);
    if (first) await w.getByLabel('Your message (optional)').fill(first);
    await w.getByRole('button', { name: 'Start chat' }).click();
    await w.getByRole('log').waitFor();
    return w;
  }

  it('a constituent chats live with an agent, survives a reload without duplicates, ends and rates', async () => {
    await page.goto(`${h.url}/demo`);
    await shot('launcher');
    await page.getByRole('button', { name: 'Chat with us' }).click();
    const w = widget();
    await w.getByRole('heading', { name: 'Chat with us', level: 2 }).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await shot('form');

    await w.getByRole('button', { name: 'Start chat' }).click();
    await w.getByText('Enter your name').waitFor();
    expect(await w.getByLabel('Your name').getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await shot('form-errors');

    await w.getByLabel('Your name').fill('Maria Lopez');
    await w.getByLabel('Your message (optional)').fill('The streetlight on Elm St is out');
    await w.getByRole('button', { name: 'Start chat' }).click();
    await w.getByText(/You are number 1 in line/).waitFor();
    await w.getByText('The streetlight on Elm St is out').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await shot('queued');

    const conversationId = await latestConversationId();
    expect(await agent.emitWithAck('conversation:claim', { conversationId })).toMatchObject({ ok: true });
    await agent.emitWithAck('typing:set', { conversationId, isTyping: true });
    await w.getByText('is typing…').first().waitFor();
    await agentSend(conversationId, 'Thanks Maria, I have logged it. Which block?');
    await w.getByText('Thanks Maria, I have logged it. Which block?').waitFor();
    await agent.emitWithAck('typing:set', { conversationId, isTyping: true });
    await w.getByText('Avery Agent is typing…').first().waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await shot('chatting');

    const box = w.getByLabel('Type your message');
    await box.fill('The 400 block, near the library');
    await box.press('Enter');
    await w.getByText('Delivered').waitFor();
    await eventually(
      async () => (await h.http.get(`/api/conversations/${conversationId}/messages`).set('Cookie', agentSession.cookie)).body.messages.length,
      3,
    );

    // Reload mid-conversation: everything is still there, once.
    await page.reload();
    await page.getByRole('button', { name: 'Chat with us' }).click();
    await widget().getByText('The 400 block, near the library').waitFor();
    expect(await widget().getByText('Thanks Maria, I have logged it. Which block?').count()).toBe(1);
    expect(await widget().getByText('The 400 block, near the library').count()).toBe(1);

    // End and rate.
    await widget().getByRole('button', { name: 'End chat' }).click();
    await widget().getByRole('button', { name: 'Yes, end chat' }).click();
    await widget().getByRole('heading', { name: 'This chat has ended.' }).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    // Email the transcript: a bad address is refused in place, a good one gets the public messages.
    await widget().getByLabel('Email me the transcript').fill('maria@');
    await widget().getByRole('button', { name: 'Send transcript' }).click();
    await widget().getByText('Enter a valid email address, like name@example.com').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await widget().getByLabel('Email me the transcript').fill('maria@example.org');
    await widget().getByRole('button', { name: 'Send transcript' }).click();
    await widget().getByText('The transcript is on its way to maria@example.org.').waitFor();
    await eventually(() => smtp.inbox.filter((m) => m.to.includes('maria@example.org')).length, 1);
    expect(smtp.inbox.find((m) => m.to.includes('maria@example.org'))!.raw).toContain('The 400 block, near the library');
    await widget().locator('label', { hasText: '4 out of 5' }).click();
    await widget().getByLabel('Comment (optional)').fill('Quick and kind');
    await widget().getByRole('button', { name: 'Send rating' }).click();
    await widget().getByText('Thank you for your feedback.').waitFor();
    await shot('ended');
    const rated = await h.server.database.db.execute(sql`select rating_score from conversations where id = ${conversationId}`);
    expect((rated as unknown as { rows: { rating_score: number }[] }).rows[0]!.rating_score).toBe(4);
  });

  it('messages typed while offline are sent once when the network returns', async () => {
    const w = await openAndStart('Offline Olly');
    const conversationId = await latestConversationId();
    await agent.emitWithAck('conversation:claim', { conversationId });
    await ctx.setOffline(true);
    await w.getByText(/Connection lost\. Reconnecting/).waitFor({ timeout: 15_000 });
    await shot('reconnecting');
    await expect(axeViolations(page)).resolves.toEqual([]);
    const box = w.getByLabel('Type your message');
    await box.fill('Sent while offline');
    await box.press('Enter');
    await w.getByText('Waiting for connection…').waitFor();
    // The agent answers meanwhile; the widget catches up after the drop.
    await agentSend(conversationId, 'Reply during the outage');
    await ctx.setOffline(false);
    await w.getByText('Reply during the outage').waitFor({ timeout: 20_000 });
    await w.getByText('Delivered').waitFor({ timeout: 20_000 });
    const stored = await h.http.get(`/api/conversations/${conversationId}/messages`).set('Cookie', agentSession.cookie);
    expect(stored.body.messages.filter((m: { body: string }) => m.body === 'Sent while offline')).toHaveLength(1);
    expect(await w.getByText('Sent while offline').count()).toBe(1);
  });

  it('a tab reloaded before its message was acknowledged sends it after the reload, once', async () => {
    // The widget's socket passes through here; while `holdSends` is on, its sends never reach the server, so
    // the message stays unacknowledged, as when the network dies just after Enter.
    let holdSends = true;
    let held = 0;
    await page.routeWebSocket(/\/socket\.io\//, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((frame) => {
        if (holdSends && typeof frame === 'string' && frame.includes('"message:send"')) {
          held++;
          return;
        }
        server.send(frame);
      });
    });
    const w = await openAndStart('Reloading Rita');
    const conversationId = await latestConversationId();
    const box = w.getByLabel('Type your message');
    await box.fill('Typed just before the reload');
    await box.press('Enter');
    await eventually(() => held, 1);
    await page.waitForTimeout(300);
    const before = await h.http.get(`/api/conversations/${conversationId}/messages`).set('Cookie', agentSession.cookie);
    expect(before.body.messages.map((m: { body: string }) => m.body)).not.toContain('Typed just before the reload');

    holdSends = false;
    await page.reload();
    await page.getByRole('button', { name: 'Chat with us' }).click();
    await widget().getByText('Delivered').waitFor({ timeout: 20_000 });
    const after = await h.http.get(`/api/conversations/${conversationId}/messages`).set('Cookie', agentSession.cookie);
    expect(after.body.messages.filter((m: { body: string }) => m.body === 'Typed just before the reload')).toHaveLength(1);
    expect(await widget().getByText('Typed just before the reload').count()).toBe(1);
  });

  it('works by keyboard only: open, fill, start, chat, and close back to the launcher', async () => {
    await page.goto(`${h.url}/demo`);
    const launcher = page.getByRole('button', { name: 'Chat with us' });
    await launcher.focus();
    await page.keyboard.press('Enter');
    const w = widget();
    await w.getByLabel('Your name').waitFor();
    await eventually(() => w.locator(':focus').getAttribute('id'), 'cb-name');
    await page.keyboard.type('Kim Keyboard');
    await w.getByLabel('Your message (optional)').focus();
    await page.keyboard.type('Hello from the keyboard');
    await w.getByRole('button', { name: 'Start chat' }).focus();
    await page.keyboard.press('Enter');
    await w.getByText('Hello from the keyboard').waitFor();
    await page.keyboard.press('Escape');
    expect(await launcher.getAttribute('aria-expanded')).toBe('false');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('casebridge-widget');
    // Target sizes: every button in the widget is at least 24×24.
    await launcher.click();
    const sizes = await w.locator('button:visible').evaluateAll((els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return Math.min(r.width, r.height);
      }),
    );
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(24);
  });

  it('speaks Spanish', async () => {
    await page.goto(`${h.url}/demo`);
    await page.getByRole('button', { name: 'Chat with us' }).click();
    await widget().getByLabel('Language').selectOption('es');
    await widget().getByRole('heading', { name: 'Chatea con nosotros', level: 2 }).waitFor();
    await widget().getByLabel('Su nombre').fill('Lucía');
    // The service catalog speaks Spanish too; choosing a service makes a typed case (permit → PRM-…).
    await widget().getByLabel('¿En qué necesita ayuda?').selectOption({ label: 'Solicitar un permiso de estacionamiento residencial' });
    // The service asks its questions up front, in Spanish; the answers become the case's fields.
    await widget().getByLabel('Placa').fill('LUCIA 1');
    await widget().getByLabel('Zona del permiso').selectOption('B');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await widget().getByRole('button', { name: 'Iniciar chat' }).click();
    await widget().getByText('Usted es el número', { exact: false }).waitFor();
    const ref = (await widget().getByText(/PRM-\d{4}-\d{6}/).textContent())!.match(/PRM-\d{4}-\d{6}/)![0];
    const queued = (await h.http.get(`/api/inbox?view=queue&q=${ref}`).set('Cookie', agentSession.cookie)).body.conversations;
    const kase = (await h.http.get(`/api/cases/${queued[0].caseId}`).set('Cookie', agentSession.cookie)).body;
    expect(kase.fields).toEqual({ plate: 'LUCIA 1', zone: 'B' });
    await expect(axeViolations(page)).resolves.toEqual([]);
    await shot('spanish');
  });

  it('with no agent online, takes a message that becomes a case with a reference number', async () => {
    agent.close();
    await new Promise((r) => setTimeout(r, 200));
    await page.goto(`${h.url}/demo`);
    await page.getByRole('button', { name: 'Chat with us' }).click();
    const w = widget();
    await w.getByRole('heading', { name: 'Leave us a message' }).waitFor();
    await w.getByLabel('Your name').fill('Night Owl');
    await w.getByRole('button', { name: 'Send message' }).click();
    await w.getByText('Write your message').waitFor();
    await w.getByLabel('Type your message').fill('My bin was not emptied today');
    await w.getByLabel('Email (optional)').fill('owl@example.org');
    await w.getByRole('button', { name: 'Send message' }).click();
    const ref = await w.locator('strong').filter({ hasText: /^SPR-\d{4}-\d{6}$/ }).textContent();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await shot('offline-intake');
    const list = await h.http.get('/api/conversations?status=queued').set('Cookie', agentSession.cookie);
    expect(list.body.conversations.map((c: { caseReference: string }) => c.caseReference)).toContain(ref);
  });

  it('reflows at 320 px wide: no sideways scrolling, everything reachable, 0 axe violations', async () => {
    await page.setViewportSize({ width: 320, height: 640 });
    await page.goto(`${h.url}/demo`);
    await page.getByRole('button', { name: 'Chat with us' }).click();
    const w = widget();
    await w.getByLabel('Your name').waitFor();
    const frame = page.frames().find((f) => f.url().includes('/widget/'))!;
    const overflow = await frame.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const box = await page.locator('iframe[title="Chat"]').boundingBox();
    expect(box!.width).toBeLessThanOrEqual(320);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'widget-320px.png') });
  });

  describe('embedding from another origin', () => {
    let other: Server;
    let otherUrl: string;
    beforeAll(async () => {
      const port = await freePort();
      otherUrl = `http://localhost:${port}`;
      other = createServer((_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(
          `<!doctype html><html lang="en"><head><title>Partner site</title></head><body><main><h1>Partner site</h1></main>` +
            `<script src="${h.url}/widget.js" data-agency="springfield-demo" data-service="Missed trash pickup" async></script></body></html>`,
        );
      });
      await new Promise<void>((r) => other.listen(port, '127.0.0.1', r));
    });
    afterAll(() => new Promise<void>((r) => other.close(() => r())));

    it('works on an allowed origin and is refused on any other', async () => {
      await page.goto(otherUrl);
      await page.getByRole('button', { name: 'Chat with us' }).click();
      // Not on the agency's list: the browser refuses to show our iframe there.
      await page.waitForTimeout(1000);
      expect(await widget().getByLabel('Your name').count()).toBe(0);

      await h.server.database.db.execute(sql`update agencies set allowed_origins = ${JSON.stringify([otherUrl])}::jsonb`);
      await page.reload();
      await page.getByRole('button', { name: 'Chat with us' }).click();
      // data-service on the tag fills in what the visitor is asking about.
      // Not a catalog title, so it becomes "Something else" with the words filled in.
      await eventually(() => widget().getByLabel('Tell us in a few words').inputValue(), 'Missed trash pickup');
      expect(await widget().getByLabel('What do you need help with?').inputValue()).toBe('other');
      await widget().getByLabel('Your name').fill('Cross Origin');
      await widget().getByRole('button', { name: 'Start chat' }).click();
      await widget().getByText(/in line/).waitFor();
      // This browser blocks storage in third-party frames; the partner page keeps the resume token,
      // so a reload there still finds the same conversation.
      await widget().getByLabel('Type your message').fill('Sent from the partner site');
      await widget().getByLabel('Type your message').press('Enter');
      await widget().getByText('Delivered').waitFor();
      await page.reload();
      await page.getByRole('button', { name: 'Chat with us' }).click();
      await widget().getByText('Sent from the partner site').waitFor();
      expect(await widget().getByLabel('Your name').count()).toBe(0);
      await h.server.database.db.execute(sql`update agencies set allowed_origins = '[]'::jsonb`);
    });
  });
});
