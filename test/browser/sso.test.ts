import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, startTestServer, type Harness } from '../support/harness.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { repoRoot } from '../support/process.js';

jest.setTimeout(120_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// Issue #11 in the browser: an admin sets up the agency's provider on the Sign-in page; a colleague types their
// email, clicks "Sign in with Springfield ID", passes the provider and lands in the console signed in.
describe('single sign-on in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let idp: TestOidcProvider;

  beforeAll(async () => {
    h = await startTestServer('pglite', { serveWeb: true });
    idp = await startOidcProvider({ redirectUris: [`${h.url}/api/auth/sso/callback`] });
    idp.accounts.set('jordan', { email: 'agent2@demo.gov', email_verified: true, name: 'Jordan Agent', roles: ['cb-agents'] });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await h?.close();
  });

  it('an admin sets the provider on the Sign-in page with the keyboard and mouse; errors name the field; 0 axe violations', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
    const page = await ctx.newPage();
    await page.goto(`${h.url}/console/login`);
    await page.getByLabel('Email').fill('admin@demo.gov');
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('link', { name: 'Sign-in' }).click();
    await page.getByRole('heading', { name: 'Sign-in' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Single sign-on is off' }).waitFor();

    await page.getByLabel('Let staff sign in through').check();
    await page.getByLabel('Provider name shown on the sign-in button').fill('Springfield ID');
    await page.getByLabel('Issuer URL').fill('http://login.example.gov');
    await page.getByLabel('Client ID').fill(idp.clientId);
    await page.getByLabel('Client secret').fill(idp.clientSecret);
    await page.getByLabel('Email domains that sign in here').fill('demo.gov');
    await page.getByRole('button', { name: 'Add a role mapping' }).click();
    await page.getByLabel('Claim value').first().fill('cb-agents');
    await page.getByRole('button', { name: 'Save' }).click();
    // Plain http to a real host is refused, next to the field.
    await page.getByText('The issuer must use https').first().waitFor();
    expect(await page.getByLabel('Issuer URL').getAttribute('aria-invalid')).toBe('true');

    await page.getByLabel('Issuer URL').fill(idp.issuer);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved. Staff can now use “Sign in with Springfield ID”.').waitFor();
    await expect(page.getByLabel(/Client secret \(stored/).inputValue()).resolves.toBe('');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-admin-sign-in.png'), fullPage: true });
    await ctx.close();
  });

  it('a colleague signs in through the provider from the sign-in page and lands in the console', async () => {
    idp.signInAs('jordan');
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${h.url}/console/login`);
    await page.getByLabel('Email').fill('agent2@demo.gov');
    await page.getByLabel('Email').press('Tab');
    const button = page.getByRole('link', { name: 'Sign in with Springfield ID' });
    await button.waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'console-login-sso.png') });
    await button.click();
    await page.getByText('Live', { exact: true }).waitFor({ timeout: 20_000 });
    await page.getByText('Jordan Agent · Agent').waitFor();
    expect(new URL(page.url()).pathname.startsWith('/console')).toBe(true);
    await ctx.close();
  });

  it('a sign-in that went wrong lands on the sign-in page with words, not a code', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${h.url}/api/auth/sso/callback?state=forged&code=x`);
    await page.getByRole('alert').filter({ hasText: 'That sign-in was already used or has expired. Please start again.' }).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await ctx.close();
  });
});
