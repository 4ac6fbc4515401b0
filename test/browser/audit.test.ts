import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { axeViolations, consoleSignIn, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, staffApi, startTestServer, uuid, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

jest.setTimeout(90_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// Issue #11 in the console: admins search and export the audit log; agents see masked numbers and reveal a
// secure value the constituent sent through its own form.
describe('audit log and sensitive data in the console, in Chromium', () => {
  let h: Harness;
  let browser: Browser;

  beforeAll(async () => {
    h = await startTestServer('pglite', { serveWeb: true });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  const signIn = (email: string) => consoleSignIn(browser, h.url, email, DEMO_PASSWORD);

  it('an admin finds refusals by actor and outcome with the keyboard, pages, and exports CSV; 0 axe violations', async () => {
    // Something to find: an agent is refused twice.
    const agent = await h.login('agent@demo.gov');
    await staffApi(h, agent).get('/api/admin/audit').expect(403);
    await staffApi(h, agent).get(`/api/cases/${uuid()}`).expect(404);

    const { ctx, page } = await signIn('admin@demo.gov');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const table = page.getByRole('region', { name: 'Audit entries' });
    await table.getByRole('rowheader', { name: 'auth.login' }).first().waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);

    // Keyboard only: type the filters, choose the outcome, press Enter.
    await page.getByLabel('Actor').focus();
    await page.keyboard.type('agent@demo.gov');
    await page.getByLabel('Outcome').selectOption('denied');
    await page.getByLabel('Actor').press('Enter');
    await page.getByRole('status').filter({ hasText: '2 entries; page 1 of 1.' }).waitFor();
    const rows = table.locator('tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.allInnerTexts()).toEqual([expect.stringMatching(/Avery Agent\s+agent\s+access\.denied\s+endpoint GET \/api\/cases\/.+\s+denied/), expect.stringMatching(/access\.denied\s+endpoint GET \/api\/admin\/audit\s+denied/)]);
    await page.screenshot({ path: join(shots, 'console-audit.png'), fullPage: true });

    // The export link carries the same filters; what it downloads is the CSV of those rows.
    const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    expect(href).toBe('/api/admin/audit?actor=agent%40demo.gov&outcome=denied&format=csv');
    const csv = await page.request.get(`${h.url}${href}`);
    expect(csv.headers()['content-type']).toContain('text/csv');
    expect((await csv.text()).trim().split('\r\n')).toHaveLength(3);

    // Paging: with every entry, Next page moves on and Previous comes back.
    await page.getByLabel('Actor').fill('');
    await page.getByLabel('Outcome').selectOption('');
    await page.getByRole('button', { name: 'Search' }).click();
    const status = page.getByRole('status').filter({ hasText: 'entries; page 1 of' });
    await status.waitFor();
    const pages = Number(/of (\d+)/.exec((await status.textContent()) ?? '')![1]);
    if (pages > 1) {
      await page.getByRole('button', { name: 'Next page' }).click();
      await page.getByRole('status').filter({ hasText: 'page 2 of' }).waitFor();
    } else {
      await expect(page.getByRole('button', { name: 'Next page' }).isDisabled()).resolves.toBe(true);
    }
    await ctx.close();
  });

  it('masked numbers are marked, and a secure value is asked for, sent by form, and shown only on request', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'my SSN is 219-09-9999', clientMessageId: uuid() });
    // Opened first, and taken in the page once it is live: a page load reconnects the console, and work held but
    // unanswered by someone without a socket for longer than the presence grace (300 ms in tests; a busy
    // machine fires that timer late) goes back to the queue.
    const { ctx, page } = await signIn('agent@demo.gov');
    const agent = await h.login('agent@demo.gov');
    await page.goto(`${h.url}/console/conversations/${conv.id}`);
    await page.getByText('Live', { exact: true }).waitFor();
    const timeline = page.getByRole('log', { name: 'Case timeline' });
    await timeline.getByText('my SSN is ***-**-9999').waitFor();
    await timeline.getByText('Sensitive numbers were masked (SSN)').waitFor();
    await page.getByRole('main').getByRole('button', { name: 'Take', exact: true }).click();

    await page.getByRole('button', { name: 'Ask for a secure value' }).click();
    await page.getByLabel('What to ask for').fill('Account number');
    await page.getByLabel('Kind').selectOption('account');
    await page.getByRole('button', { name: 'Send the form' }).click();
    await timeline.getByText('asked for Account number through a secure form').waitFor().catch(async (err: unknown) => {
      // Say what the agent saw and what the server holds, so a failure here names its cause.
      await page.screenshot({ path: join(shots, 'console-secure-ask-missing.png'), fullPage: true });
      const held = (await staffApi(h, agent).get(`/api/conversations/${conv.id}`)).body as { status?: string; assigneeId?: string | null };
      const error = await page.locator('#composer-error, .secure .error, [role="alert"]').allInnerTexts();
      throw new Error(`${(err as Error).message}\nconversation: ${held.status}, assignee ${held.assigneeId ?? 'none'} (me ${agent.me.id}); alerts shown: ${JSON.stringify(error)}`);
    });
    await expect(axeViolations(page)).resolves.toEqual([]);

    const fieldId = ((await staffApi(h, agent).get(`/api/conversations/${conv.id}/messages?afterSeq=0`)).body.messages as { meta?: { secureField?: { id: string } } }[]).find((m) => m.meta?.secureField)!.meta!.secureField!.id;
    await h.http.post(`/api/secure-fields/${fieldId}`).set('Authorization', `Bearer ${token}`).send({ value: 'ACCT-000-7781' }).expect(201);
    await timeline.getByText('Secure value provided: Account number.').waitFor();
    expect(await timeline.textContent()).not.toContain('ACCT-000-7781');
    await timeline.getByRole('button', { name: 'Show Account number' }).click();
    await timeline.getByText('ACCT-000-7781').waitFor();
    await timeline.getByRole('button', { name: 'Hide' }).click();
    await timeline.getByRole('button', { name: 'Show Account number' }).waitFor();
    expect(await timeline.textContent()).not.toContain('ACCT-000-7781');
    await ctx.close();
  });

  it('an admin adds a masking pattern (a bad one is refused next to its field); a constituent\'s matching number is masked', async () => {
    const { ctx, page } = await signIn('admin@demo.gov');
    await page.getByRole('link', { name: 'Sensitive data' }).click();
    await page.getByRole('heading', { name: 'Sensitive data' }).waitFor();
    await page.getByRole('button', { name: 'Add a pattern' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Benefits case number');
    // Catastrophic backtracking is refused, with the reason next to the field.
    await page.getByLabel('Regular expression').fill('(a+)+$');
    await page.getByRole('button', { name: 'Save patterns' }).click();
    await page.getByRole('alert').filter({ hasText: 'Check the highlighted fields.' }).waitFor();
    await expect(page.getByLabel('Regular expression').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByLabel('Regular expression').fill('\\bBEN-\\d{6}\\b');
    await page.getByRole('button', { name: 'Save patterns' }).click();
    await page.getByText('Saved. New messages are masked').waitFor();
    await page.screenshot({ path: join(shots, 'console-sensitive-patterns.png') });
    await ctx.close();

    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Pat Pattern' });
    const socket = await h.constituentSocket(token);
    // Patterns reach every node within seconds (they are cached briefly): retry until this one applies.
    let body = '';
    for (let i = 0; i < 30 && !body.includes('***'); i++) {
      const res = await socket.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'My case is BEN-123456, thanks' });
      if (!res.ok) throw new Error(JSON.stringify(res.error));
      body = res.data.message.body;
      if (!body.includes('***')) await new Promise((r) => setTimeout(r, 500));
    }
    expect(body).not.toContain('BEN-123456');
    expect(body).toMatch(/\*\*\*/);
    socket.close();
  });
});
