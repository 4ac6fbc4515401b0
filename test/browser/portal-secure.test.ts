import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { Message } from '@casebridge/shared';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { eventually, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';
import { repoRoot } from '../support/process.js';
import { startSmtp } from '../support/smtp.js';

jest.setTimeout(120_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// Issue #11: a secure value asked for in a chat is answered from the portal case page, by keyboard only.
describe('secure values in the portal, in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let agent: StaffSession;

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer('pglite', { serveWeb: true, env: { SMTP_URL: smtp.url, MAIL_FROM: 'Springfield <help@springfield.example>' } });
    browser = await launchBrowser();
    agent = await h.login('agent@demo.gov');
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await smtp?.close();
  });

  const focusedId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '');
  /** Tab (forwards) until the element with this id has focus: the way a keyboard user gets there. */
  async function tabTo(page: Page, id: string) {
    for (let i = 0; i < 40; i++) {
      if ((await focusedId(page)) === id) return;
      await page.keyboard.press('Tab');
    }
    throw new Error(`never reached #${id} by Tab (at #${await focusedId(page)})`);
  }

  it('lists the open request, refuses an empty value next to the field, sends it sealed and never shows it; axe 0, English and Spanish', async () => {
    const secret = '078-05-1120';
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Vera Value', email: 'vera@example.org', message: 'Help with my benefits', clientMessageId: uuid() });
    const as = staffApi(h, agent);
    await as.post(`/api/conversations/${conv.id}/claim`).expect(200);
    const asked = (await as.post(`/api/conversations/${conv.id}/secure-fields`, { label: 'Social Security number', kind: 'ssn' }).expect(201)).body as Message;
    const fieldId = asked.meta!.secureField!.id;
    const inputId = `secure-${fieldId}`;

    const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${h.url}/portal/springfield/case`);
    await page.getByRole('heading', { name: 'Check your case' }).waitFor();
    await tabTo(page, 'portal-reference');
    await page.keyboard.type(conv.caseReference);
    await page.keyboard.press('Enter');
    await page.getByText('we have sent a code').waitFor();
    await eventually(() => smtp.inbox.some((m) => m.to.includes('vera@example.org')), true);
    const code = /code is (\d{6})/.exec(smtp.inbox.find((m) => m.to.includes('vera@example.org'))!.raw.replace(/=\r?\n/g, ''))![1]!;
    expect(await focusedId(page)).toBe('portal-code');
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: conv.caseReference }).waitFor();

    // One form for the request, labelled with what was asked for.
    await page.getByRole('heading', { name: 'Secure information we asked for' }).waitFor();
    const form = page.getByRole('form', { name: 'Secure form: Social Security number' });
    await form.waitFor();
    expect(await page.getByLabel('Social Security number', { exact: true }).getAttribute('type')).toBe('password');
    await expect(axeViolations(page)).resolves.toEqual([]);

    // Empty: said next to the field, focus stays there, nothing sent.
    await tabTo(page, inputId);
    await page.keyboard.press('Enter');
    await page.locator(`#${inputId}-error`).getByText('Enter the value before sending.').waitFor();
    expect(await focusedId(page)).toBe(inputId);
    expect(await page.locator(`#${inputId}`).getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator(`#${inputId}`).getAttribute('aria-describedby')).toContain(`${inputId}-error`);
    await expect(axeViolations(page)).resolves.toEqual([]);

    await page.keyboard.type(secret);
    await page.screenshot({ path: join(shots, 'portal-secure-form.png'), fullPage: true });
    // "Show what I typed" is a toggle the keyboard reaches after the send button.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Space');
    expect(await page.locator(`#${inputId}`).getAttribute('type')).toBe('text');
    expect(await page.getByRole('button', { name: 'Show what I typed' }).getAttribute('aria-pressed')).toBe('true');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');

    // A clear confirmation gets focus; the form is gone and the value is nowhere on the page.
    const done = page.locator('#secure-sent');
    await done.getByText('Sent securely: Social Security number.').waitFor();
    await form.waitFor({ state: 'detached' });
    await eventually(() => focusedId(page), 'secure-sent');
    await page.getByText('Secure value provided: Social Security number.').waitFor();
    const html = await page.content();
    expect(html).not.toContain(secret);
    expect(html).not.toContain('1120');
    expect(await page.evaluate(() => [...document.querySelectorAll('input')].map((i) => i.value).filter(Boolean))).toEqual([]);
    await page.screenshot({ path: join(shots, 'portal-secure-sent.png'), fullPage: true });
    await expect(axeViolations(page)).resolves.toEqual([]);
    // The agency has it, sealed: the assigned agent can show it.
    expect((await as.post(`/api/secure-fields/${fieldId}/reveal`).expect(200)).body.value).toBe(secret);

    // A second request arrives live and reads in Spanish on the Spanish page (same tab, same sign-in).
    await as.post(`/api/conversations/${conv.id}/secure-fields`, { label: 'Número de cuenta', kind: 'account' }).expect(201);
    await page.getByRole('form', { name: 'Secure form: Número de cuenta' }).waitFor({ timeout: 5000 });
    await page.goto(`${h.url}/portal/springfield/case?lang=es`);
    await page.getByRole('heading', { name: 'Información segura que le pedimos' }).waitFor();
    await page.getByRole('form', { name: 'Formulario seguro: Número de cuenta' }).waitFor();
    await page.getByRole('button', { name: 'Enviar de forma segura' }).waitFor();
    await page.screenshot({ path: join(shots, 'portal-secure-form-es.png'), fullPage: true });
    await expect(axeViolations(page)).resolves.toEqual([]);
    await ctx.close();
  });
});
