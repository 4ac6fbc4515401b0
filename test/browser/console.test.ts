import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, startTestServer, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

// Real browsers and several servers: slower than the API tests.
jest.setTimeout(60_000);

const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

describe('console and portal in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    h = await startTestServer('pglite', { serveWeb: true });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  beforeEach(async () => {
    ctx = await browser.newContext();
    page = await ctx.newPage();
  });
  afterEach(async () => ctx?.close());

  it('an agent signs in with the keyboard only, sees the live list, and signs out', async () => {
    await page.goto(`${h.url}/console`);
    await page.waitForURL(/\/console\/login\?next=%2Fconsole$/);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-login.png'), fullPage: true });

    // Submit empty: both fields are flagged and the summary is announced.
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('Please correct the highlighted fields.');
    expect(await page.getByLabel('Email').getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-login-errors.png'), fullPage: true });

    await page.getByLabel('Email').fill('agent@demo.gov');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Email or password is incorrect.').waitFor();

    // Keyboard only from here: focus the email field, Tab to the password, Enter to submit.
    await page.getByLabel('Email').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('password');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type(DEMO_PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console$/);
    await page.getByRole('heading', { name: 'Inbox' }).waitFor();
    await page.getByText('Avery Agent · Agent').waitFor();
    await page.getByText('Live', { exact: true }).waitFor();

    // A constituent starts a chat: it appears without a reload.
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Maria Lopez' });
    await page.getByRole('link', { name: /Maria Lopez/ }).waitFor();
    await page.getByText(conv.caseReference).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-list.png'), fullPage: true });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/console\/login$/);
    const me = await page.evaluate(async () => (await fetch('/api/auth/me')).status);
    expect(me).toBe(401);
  });

  it('a console whose session is ended elsewhere goes back to sign-in', async () => {
    const session = await h.login('supervisor@demo.gov');
    await ctx.addCookies([{ name: 'cb_session', value: session.cookie.split('=')[1]!, url: h.url }]);
    await page.goto(`${h.url}/console`);
    await page.getByText('Live', { exact: true }).waitFor();
    await h.http.post('/api/auth/logout').set('Cookie', session.cookie).set('x-csrf-token', session.csrf);
    await page.waitForURL(/\/console\/login\?ended=1$/, { timeout: 5000 });
    await page.getByText('Your session ended. Please sign in again.').waitFor();
  });

  it('an admin defines a case type in the console: errors name the field, then it saves and agents can use it', async () => {
    await page.goto(`${h.url}/console/login`);
    await page.getByLabel('Email').fill('admin@demo.gov');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('link', { name: 'Case types' }).click();
    await page.getByRole('heading', { name: 'Case types', level: 1 }).waitFor();
    await page.getByRole('button', { name: /Residential parking permit/ }).waitFor();
    await page.getByRole('button', { name: 'New case type' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Tree trimming');
    await page.getByLabel('Reference prefix').fill('TRE');
    await page.getByRole('button', { name: 'Add a field' }).click();
    await page.getByLabel('Key', { exact: true }).fill('species');
    await page.getByLabel('Label (English)').fill('Species');
    await page.getByLabel('Type', { exact: true }).selectOption('select');
    await page.getByRole('button', { name: 'Save case type' }).click();
    await page.getByRole('alert').filter({ hasText: 'A select field needs options' }).waitFor();
    expect(await page.getByLabel('Options (comma separated)').getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByLabel('Options (comma separated)').fill('Oak, Maple, Elm');
    // A playbook step that sets a field to a value it cannot hold is refused, naming the step.
    await page.getByRole('button', { name: 'Add a step' }).click();
    await page.getByLabel('Step key').fill('inspect');
    await page.getByLabel('Step title').fill('Inspect the tree');
    await page.getByLabel('Stage', { exact: true }).selectOption('review');
    await page.getByLabel('Required').nth(1).check();
    await page.getByLabel('When done').selectOption('set_field');
    await page.getByLabel('Field', { exact: true }).selectOption('species');
    await page.getByLabel('Value').fill('Palm');
    await page.getByLabel('Normal: first response (hours)').fill('2');
    await page.getByLabel('Normal: resolution (hours)').fill('40');
    await page.getByLabel('Resolved to Open').uncheck();
    await page.getByLabel('Reopen window (days after resolution)').fill('7');
    await page.getByRole('button', { name: 'Save case type' }).click();
    await page.getByRole('alert').filter({ hasText: 'Species must be one of: Oak, Maple, Elm' }).waitFor();
    expect(await page.getByLabel('Value').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Value').fill('Oak');
    await page.getByRole('button', { name: 'Save case type' }).click();
    await page.getByText('Saved Tree trimming (version 1).').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-admin-case-types.png'), fullPage: true });
    const agent = await h.login('agent@demo.gov');
    const types = (await h.http.get('/api/case-types').set('Cookie', agent.cookie)).body.caseTypes;
    expect(types.find((t: { name: string }) => t.name === 'Tree trimming')).toMatchObject({
      prefix: 'TRE',
      fields: [{ key: 'species', type: 'select', options: ['Oak', 'Maple', 'Elm'] }],
      playbook: [{ key: 'inspect', stage: 'review', title: 'Inspect the tree', required: true, action: { kind: 'set_field', fieldKey: 'species', value: 'Oak' } }],
      sla: { normal: { firstResponseMinutes: 120, resolutionMinutes: 2400 } },
      reopenDays: 7,
    });
    const tree = types.find((t: { name: string }) => t.name === 'Tree trimming');
    expect(tree.transitions.resolved).toEqual(['closed']);
  });

  it('an admin sets the agency calendar and edits the service catalog, with errors next to the field and 0 axe violations', async () => {
    await page.goto(`${h.url}/console/login`);
    await page.getByLabel('Email').fill('admin@demo.gov');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('link', { name: 'Calendar' }).click();
    await page.getByRole('heading', { name: 'Agency calendar' }).waitFor();
    await page.getByLabel('Open around the clock').uncheck();
    await page.getByLabel('Time zone').fill('Mars/Olympus');
    await page.getByRole('button', { name: 'Save calendar' }).click();
    await page.getByText('Unknown time zone').first().waitFor();
    expect(await page.getByLabel('Time zone').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Time zone').fill('America/Chicago');
    await page.getByLabel('Open on Saturday').check();
    await page.getByLabel('Saturday closes').fill('12:00');
    await page.getByLabel('Add a holiday').fill('2026-12-25');
    await page.getByRole('button', { name: 'Add holiday' }).click();
    await page.getByRole('button', { name: 'Remove 2026-12-25' }).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByRole('button', { name: 'Save calendar' }).click();
    await page.getByText('Calendar saved.').waitFor();
    const agent = await h.login('agent@demo.gov');
    const cal = (await h.http.get('/api/calendar').set('Cookie', agent.cookie)).body;
    expect(cal.businessHours.timezone).toBe('America/Chicago');
    expect(cal.businessHours.days.sat).toEqual([['09:00', '12:00']]);
    expect(cal.holidays).toContain('2026-12-25');

    await page.getByRole('link', { name: 'Services' }).click();
    await page.getByRole('heading', { name: 'Service catalog' }).waitFor();
    await page.getByRole('button', { name: /Report graffiti/ }).click();
    await page.getByRole('button', { name: 'Add a question' }).click();
    await page.getByRole('button', { name: 'Save service' }).click();
    await page.getByRole('alert').filter({ hasText: /question|field/i }).waitFor();
    await page.getByLabel('Fills the field').nth(1).selectOption({ label: 'Is it a hazard to traffic?' });
    await page.getByLabel('Question (English)').nth(1).fill('Is it blocking the road?');
    await page.getByLabel('Question (Spanish)').nth(1).fill('¿Bloquea la calle?');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByRole('button', { name: 'Save service' }).click();
    await page.getByText('Saved “Report graffiti”.').waitFor();
    const services = (await h.http.get('/api/services').set('Cookie', agent.cookie)).body.services;
    expect(services.find((x: { title: { en: string } }) => x.title.en === 'Report graffiti').questions.map((q: { fieldKey: string }) => q.fieldKey)).toEqual([
      'location',
      'hazard',
    ]);
    await page.screenshot({ path: join(shots, 'console-admin-services.png'), fullPage: true });

    // Routing per group: the choice saves at once and says so.
    await page.getByRole('link', { name: 'Groups' }).click();
    await page.getByRole('heading', { name: 'Groups and routing' }).waitFor();
    await page.getByRole('group', { name: 'Permits' }).getByLabel(/Least busy/).check();
    await page.getByText('Permits now routes: Least busy.').waitFor();
    // A routing rule, saved and then tried out with the preview.
    await page.getByRole('button', { name: 'Add a rule' }).click();
    const rule = page.getByRole('group', { name: /^Rule 1/ });
    await rule.getByLabel('Rule name').fill('Spanish to Benefits');
    await rule.getByLabel('Send to group').selectOption({ label: 'Benefits' });
    await rule.getByRole('group', { name: 'Languages' }).getByLabel('Spanish').check();
    await page.getByRole('button', { name: 'Save rules' }).click();
    await page.getByText('Saved 1 rule.').waitFor();
    await page.getByLabel('Language', { exact: true }).selectOption('es');
    await page.getByRole('button', { name: 'Where would it go?' }).click();
    await page.getByText('Rule “Spanish to Benefits” sent it to Benefits (priority normal). Saved rules only.').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    const admin = await h.login('admin@demo.gov');
    const groups = (await h.http.get('/api/admin/groups').set('Cookie', admin.cookie)).body.groups;
    expect(groups.find((g: { name: string }) => g.name === 'Permits').routing).toBe('least_busy');
    await h.http
      .put(`/api/admin/groups/${groups.find((g: { name: string }) => g.name === 'Permits').id}`)
      .set('Cookie', admin.cookie)
      .set('x-csrf-token', admin.csrf)
      .send({ routing: 'manual' })
      .expect(200);
    await h.http.put('/api/admin/routing-rules').set('Cookie', admin.cookie).set('x-csrf-token', admin.csrf).send({ rules: [] }).expect(200);

    // Phone and SMS: the page says what is missing, checks each value, and never shows the token back.
    await page.getByRole('link', { name: 'Phone' }).click();
    await page.getByText(/SMS is off\. Missing: the account SID, the auth token/).waitFor();
    await page.getByLabel('Account SID').fill('AC123');
    await page.getByLabel(/^Auth token/).fill('f0'.repeat(16));
    await page.getByLabel('Phone numbers (E.164, comma separated)').fill('+15550001111');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('An account SID starts with AC and has 32 hex digits', { exact: true }).waitFor();
    await page.getByRole('alert').filter({ hasText: 'Check the highlighted fields.' }).waitFor();
    await page.getByLabel('Account SID').fill(`AC${'a1'.repeat(16)}`);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Texts to +15550001111 arrive in the queue.').waitFor();
    expect(await page.getByLabel(/^Auth token/).inputValue()).toBe('');
    await page.getByText('(stored; leave empty to keep it)').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
  });

  it('console pages cannot be framed and carry a content security policy', async () => {
    const res = await page.goto(`${h.url}/console/login`);
    const headers = res!.headers();
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(headers['content-security-policy']).toMatch(/object-src 'none'/);
  });

  it('the demo agency page embeds the widget launcher, reachable by keyboard, and passes axe', async () => {
    await page.goto(`${h.url}/demo`);
    const launcher = page.getByRole('button', { name: 'Chat with us' });
    await launcher.waitFor();
    const box = await launcher.boundingBox();
    expect(box!.width).toBeGreaterThanOrEqual(24);
    expect(box!.height).toBeGreaterThanOrEqual(24);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'demo.png'), fullPage: true });
  });
});
