import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, eventually, startTestServer, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

jest.setTimeout(90_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// A supervisor watches the queues live while constituents arrive and agents take work.
describe('the supervisor dashboard, in Chromium', () => {
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

  it('a queue grows and shrinks live as constituents arrive and an agent takes work; 0 axe violations', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await ctx.newPage();
    await page.goto(`${h.url}/console/login`);
    await page.getByLabel('Email').fill('supervisor@demo.gov');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByText('Live', { exact: true }).waitFor();
    await page.getByRole('link', { name: 'Dashboard' }).click();
    const general = page.getByRole('region', { name: 'General' });
    await general.getByText('Waiting').waitFor();
    const waiting = () => general.locator('dd').first().locator('strong').textContent();
    expect(await waiting()).toBe('0');

    // Two constituents arrive: the count rises without a reload.
    const convs = [];
    const tokens: string[] = [];
    for (const name of ['First Arrival', 'Second Arrival']) {
      const { token } = await h.widgetSession();
      tokens.push(token);
      convs.push(await h.startConversation(token, { name }));
    }
    const first = { token: tokens[0]!, conv: convs[0]! };
    await general.locator('dd strong', { hasText: '2' }).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-dashboard.png'), fullPage: true });

    // An agent takes one: it drops to 1, and the agent shows 1 of 3.
    const avery = await h.login('agent@demo.gov');
    const sock = await h.staffSocket(avery);
    await sock.emitWithAck('conversation:claim', { conversationId: convs[0]!.id });
    await general.locator('dd strong', { hasText: '1' }).waitFor();
    await general.getByRole('row', { name: /Avery Agent/ }).getByText('1 of').waitFor();
    expect(await general.getByLabel('Capacity of Avery Agent').inputValue()).toBe('3');
    // The supervisor gives Avery room for one more at once.
    await general.getByLabel('Capacity of Avery Agent').fill('4');
    await general.getByLabel('Capacity of Avery Agent').press('Enter');
    await page.getByText('Avery Agent now takes up to 4 conversations at once.').waitFor();

    // The supervisor sets an agent away from the dashboard.
    await general.getByLabel('Status of Avery Agent').selectOption('away');
    await page.getByText('Avery Agent is now away.').waitFor();

    // Avery, in her console, hears the supervisor's whisper; the constituent never sees it.
    const actx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const a = await actx.newPage();
    await a.goto(`${h.url}/console/login`);
    await a.getByLabel('Email').fill('agent@demo.gov');
    await a.getByLabel('Password').fill(DEMO_PASSWORD);
    await a.getByLabel('Password').press('Enter');
    await a.getByText('Live', { exact: true }).waitFor();
    const constituent = await h.constituentSocket(first.token);
    const heard: string[] = [];
    constituent.on('message:created', (m) => heard.push(m.body));
    await page.goto(`${h.url}/console/conversations/${first.conv.id}`);
    await page.getByRole('heading', { name: 'First Arrival', level: 1 }).waitFor();
    await page.getByLabel('Internal note (staff only)').fill('Offer the fee waiver form');
    await page.getByLabel('Internal note (staff only)').press('Enter');
    await a.getByText('Sam Supervisor whispered in').waitFor();
    await a.getByText('“Offer the fee waiver form”').waitFor();
    await a.screenshot({ path: join(shots, 'console-whisper.png') });
    // The supervisor joins: the constituent is told, and the supervisor can reply in public.
    await page.getByRole('button', { name: 'Join' }).click();
    await page.getByText('You joined. Avery Agent and you can both reply.').waitFor();
    await page.getByLabel('Reply to the constituent').fill('I am here to help too.');
    await page.getByLabel('Reply to the constituent').press('Enter');
    await eventually(() => heard.includes('I am here to help too.'), true);
    expect(heard).toContain('Sam Supervisor (supervisor) joined the conversation.');
    await page.screenshot({ path: join(shots, 'console-supervisor-joined.png') });
    // Then the supervisor takes the conversation over.
    await page.getByRole('button', { name: 'Take over' }).click();
    await page.getByText('You took over this conversation from Avery Agent.').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    expect(heard).not.toContain('Offer the fee waiver form');

    // Reports: this week's figures per group and agent, and the CSV link.
    await page.getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'By group' }).waitFor();
    await page.getByRole('row', { name: /^General 2 0/ }).waitFor();
    expect(await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href')).toMatch(/format=csv/);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-reports.png'), fullPage: true });
    await actx.close();
    await ctx.close();
  });
});
