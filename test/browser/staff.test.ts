import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { axeViolations, consoleSignIn, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, startTestServer, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

jest.setTimeout(90_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// An admin staffs the agency from the console: a new group, a new colleague in it, who then signs in.
describe('staff and groups administration, in Chromium', () => {
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

  const signIn = (email: string, password = DEMO_PASSWORD) => consoleSignIn(browser, h.url, email, password);

  it('an admin adds a group and a colleague in it by keyboard; the colleague signs in to that group; 0 axe violations', async () => {
    const { ctx, page } = await signIn('admin@demo.gov');
    await page.getByRole('link', { name: 'Groups' }).click();
    await page.getByLabel('New group').fill('General');
    await page.getByLabel('New group').press('Enter');
    await page.getByText('A group with this name already exists').waitFor();
    expect(await page.getByLabel('New group').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('New group').fill('Licensing');
    await page.getByLabel('New group').press('Enter');
    await page.getByRole('group', { name: 'Licensing' }).waitFor();

    await page.getByRole('link', { name: 'Staff' }).click();
    await page.getByRole('button', { name: 'Sam Supervisor' }).waitFor();
    await page.getByRole('button', { name: 'New colleague' }).click();
    // The name field takes focus: type the whole form with the keyboard.
    await page.keyboard.type('Lou Licenser');
    await page.getByLabel('Email (they sign in with it)').fill('lou@demo.gov');
    await page.getByRole('checkbox', { name: 'Licensing' }).check();
    await page.getByLabel('First password (12 characters or more)').fill('too-short');
    await page.getByLabel('First password (12 characters or more)').press('Enter');
    const password = page.getByLabel('First password (12 characters or more)');
    await page.getByText('At least 12 characters').waitFor();
    expect(await password.getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await password.fill('licensing-first-password');
    await password.press('Enter');
    await page.getByText('Lou Licenser can now sign in as lou@demo.gov').waitFor();
    await expect(page.getByRole('button', { name: /Lou Licenser/ }).innerText()).resolves.toMatch(/Agent · Licensing/);
    await page.screenshot({ path: join(shots, 'staff-admin.png') });
    await expect(axeViolations(page)).resolves.toEqual([]);

    const lou = await signIn('lou@demo.gov', 'licensing-first-password');
    await lou.page.getByText('Lou Licenser · Agent').waitFor();
    const me = await lou.page.evaluate(() => fetch('/api/auth/me').then((r) => r.json()));
    expect(me.groups.map((g: { name: string }) => g.name)).toEqual(['Licensing']);

    // Disabled from the Staff page: Lou's open console is signed out.
    await page.getByRole('button', { name: 'Disable account' }).click();
    await page.getByText('Lou Licenser can no longer sign in').waitFor();
    await lou.page.waitForURL(/\/console\/login/, { timeout: 10_000 });
    await lou.ctx.close();
    await ctx.close();
  });
});
