import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, eventually, startTestServer, uuid, type Harness } from '../support/harness.js';
import { startSmtp } from '../support/smtp.js';
import { repoRoot } from '../support/process.js';

jest.setTimeout(120_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// Issue #11 in the browser: a constituent downloads their data and asks for deletion in the portal; an admin
// sees the request on the Privacy page, blocked by a legal hold, then approves it; 0 axe violations.
describe('constituent data and deletion requests, in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;

  beforeAll(async () => {
    smtp = await startSmtp();
    h = await startTestServer('pglite', { serveWeb: true, env: { SMTP_URL: smtp.url, MAIL_FROM: 'Springfield <help@springfield.example>' } });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await smtp?.close();
  });

  it('portal: download my data, ask for deletion; console: blocked by a legal hold, then approved', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Dora Delete', email: 'dora@example.org', message: 'Please fix the lamp on Oak St', clientMessageId: uuid() });

    const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
    const page = await ctx.newPage();
    await page.goto(`${h.url}/portal/springfield/case`);
    await page.getByLabel('Case reference').fill(conv.caseReference);
    await page.keyboard.press('Enter');
    await eventually(() => smtp.inbox.some((m) => m.to.includes('dora@example.org')), true);
    const mail = smtp.inbox.find((m) => m.to.includes('dora@example.org'))!;
    await page.getByLabel('6-digit code').fill(/code is (\d{6})/.exec(mail.raw.replace(/=\r?\n/g, ''))![1]!);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Your data' }).waitFor();

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download my data' }).click()]);
    const data = JSON.parse(readFileSync((await download.path())!, 'utf8'));
    expect(data.cases[0].reference).toBe(conv.caseReference);
    expect(data.conversations[0].messages[0].text).toBe('Please fix the lamp on Oak St');

    await page.getByRole('button', { name: 'Ask us to delete my data' }).click();
    await page.getByLabel('Anything we should know (optional)').fill('I moved away');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByRole('button', { name: 'Send deletion request' }).click();
    await page.getByText('We received your request.').waitFor();
    await page.screenshot({ path: join(shots, 'portal-my-data.png'), fullPage: true });
    await ctx.close();

    // The admin puts the case on hold first (a records request), so approval is refused with the reason shown.
    const admin = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const a = await admin.newPage();
    await a.goto(`${h.url}/console/login`);
    await a.getByLabel('Email').fill('admin@demo.gov');
    await a.getByLabel('Password').fill(DEMO_PASSWORD);
    await a.getByLabel('Password').press('Enter');
    await a.getByText('Live', { exact: true }).waitFor();
    const caseId = (await a.request.get(`${h.url}/api/conversations/${conv.id}`).then((r) => r.json())).caseId as string;
    await a.goto(`${h.url}/console/cases/${caseId}`);
    await a.getByRole('button', { name: 'Put on legal hold' }).click();
    await a.getByLabel('Why is this case held?').fill('Records request 12');
    await a.getByRole('button', { name: 'Put on hold' }).click();
    await a.getByText('Legal hold', { exact: true }).waitFor();
    await a.screenshot({ path: join(shots, 'console-legal-hold.png') });

    await a.getByRole('link', { name: 'Privacy' }).click();
    await a.getByRole('heading', { name: 'Deletion requests' }).waitFor();
    await a.getByText(`On legal hold: ${conv.caseReference}`).waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.getByRole('button', { name: 'Approve and delete' }).click();
    await a.getByRole('alert').filter({ hasText: `Cannot delete while ${conv.caseReference} is on legal hold` }).waitFor();

    await a.request.delete(`${h.url}/api/cases/${caseId}/legal-hold`, { headers: { 'x-csrf-token': (await a.request.get(`${h.url}/api/auth/me`).then((r) => r.json())).csrfToken } });
    await a.reload();
    await a.getByRole('button', { name: 'Approve and delete' }).click();
    await a.getByText('a signed report was written').waitFor();
    await a.getByRole('button', { name: /^Verify/ }).click();
    await a.getByText('Valid', { exact: true }).waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.screenshot({ path: join(shots, 'console-privacy.png'), fullPage: true });
    await admin.close();
  });
});
