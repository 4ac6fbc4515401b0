import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { CaseDetail } from '@casebridge/shared';
import { axeViolations, holdWebSockets, launchBrowser } from '../support/browser.js';
import { eventually, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';
import { repoRoot } from '../support/process.js';
import { startSmtp } from '../support/smtp.js';

jest.setTimeout(90_000);
const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// A constituent follows their case in the portal: a code by email, what is awaited, a reply with a file.
describe('the constituent portal, in Chromium', () => {
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

  async function newPage(width = 1100): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width, height: 900 } });
    return ctx.newPage();
  }
  const staff = (method: 'get' | 'patch', path: string) =>
    method === 'get' ? h.http.get(path).set('Cookie', agent.cookie) : h.http.patch(path).set('Cookie', agent.cookie).set('x-csrf-token', agent.csrf);

  it('a constituent answers an Awaiting-info request through the portal, by keyboard, with 0 axe violations', async () => {
    // An agent asked for a photo on a chat that ended.
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Paula Portal', email: 'paula@example.org', message: 'Broken sign on Elm' });
    const sock = await h.staffSocket(agent);
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    await sock.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Thanks, we will check the sign.' });
    const caseId = (await staff('get', `/api/conversations/${conv.id}`)).body.caseId as string;
    const d = (await staff('get', `/api/cases/${caseId}`)).body as CaseDetail;
    await staff('patch', `/api/cases/${caseId}`).send({ version: d.version, status: 'awaiting_info', request: 'a photo of the broken sign' });

    const page = await newPage();
    await page.goto(`${h.url}/portal`);
    await page.getByRole('heading', { name: 'How can we help?' }).waitFor();
    expect(page.url()).toBe(`${h.url}/portal/springfield`);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByRole('link', { name: /Check your case/ }).click();
    await page.getByRole('heading', { name: 'Check your case' }).waitFor();
    await page.getByLabel('Case reference').fill(conv.caseReference.toLowerCase());
    await page.keyboard.press('Enter');
    await page.getByText('we have sent a code').waitFor();
    await eventually(() => smtp.inbox.some((m) => m.to.includes('paula@example.org')), true);
    const mail = smtp.inbox.find((m) => m.to.includes('paula@example.org'))!;
    const code = /code is (\d{6})/.exec(mail.raw.replace(/=\r?\n/g, ''))![1]!;

    // A wrong code says so next to the field, and changes nothing.
    await page.getByLabel('6-digit code').fill(code === '000000' ? '000001' : '000000');
    await page.keyboard.press('Enter');
    await page.getByText('That code is not right').waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByLabel('6-digit code').fill(code);
    await page.keyboard.press('Enter');

    await page.getByRole('heading', { name: conv.caseReference }).waitFor();
    await page.getByText('Waiting for you').waitFor();
    await page.getByText('a photo of the broken sign', { exact: true }).waitFor();
    await page.getByText('Thanks, we will check the sign.').waitFor();
    await page.screenshot({ path: join(shots, 'portal-case-awaiting.png'), fullPage: true });
    await expect(axeViolations(page)).resolves.toEqual([]);

    const png = Buffer.from(
      '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d5b1d90000000049454e44ae426082',
      'hex',
    );
    await page.getByLabel('Your reply').fill('Here is the photo of the sign.');
    await page.getByLabel(/Attach a file/).setInputFiles({ name: 'sign.png', mimeType: 'image/png', buffer: png });
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.getByText('Sent. We will answer here').waitFor();
    await page.getByRole('button', { name: 'Download sign.png' }).waitFor();
    await page.getByText('In progress').waitFor();
    expect(await page.getByText('We need something from you').count()).toBe(0);
    await page.screenshot({ path: join(shots, 'portal-case-answered.png'), fullPage: true });

    // The agency sees the answer: the case is open again and the reply is on a portal conversation, Avery's.
    await eventually(async () => (await staff('get', `/api/cases/${caseId}`)).body.status, 'open');
    const mine = (await staff('get', `/api/inbox?view=mine&q=${conv.caseReference}`)).body.conversations as { id: string; channel: string }[];
    const portalConv = mine.find((c) => c.channel === 'portal')!;
    // Avery answers there; the open portal page shows it at once (well before its 15-second refresh).
    await sock.emitWithAck('message:send', { conversationId: portalConv.id, clientMessageId: uuid(), body: 'Got the photo, thank you.' });
    await page.getByText('Got the photo, thank you.').waitFor({ timeout: 5000 });

    // On a slow line the page shows the case before its socket is open: an answer sent in between still
    // appears as soon as the socket opens, not at the next 15-second look.
    const release = await holdWebSockets(page.context());
    await page.reload();
    await page.getByRole('heading', { name: conv.caseReference }).waitFor();
    await sock.emitWithAck('message:send', { conversationId: portalConv.id, clientMessageId: uuid(), body: 'Sent while your page opened.' });
    release();
    await page.getByText('Sent while your page opened.').waitFor({ timeout: 5000 });
  });

  it('starts a request from the catalog in Spanish, on a phone-sized screen, and gives the reference', async () => {
    const page = await newPage(390);
    await page.goto(`${h.url}/portal/springfield/request?lang=es`);
    await page.getByRole('heading', { name: 'Hacer una solicitud' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('es');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByRole('button', { name: /Solicitar un permiso de estacionamiento residencial/ }).click();
    await page.getByLabel('Su nombre').fill('Rosa Ruiz');
    await page.getByLabel('Correo electrónico').fill('rosa@example.org');
    await page.getByLabel(/^Placa/).fill('ROSA 7');
    // Missing answers are named next to their field.
    await page.getByRole('button', { name: 'Enviar solicitud' }).click();
    await page.locator('#answer-address-error').waitFor();
    await page.getByLabel(/^Domicilio/).fill('7 Calle Olmo');
    await page.getByLabel(/^Zona del permiso/).selectOption('C');
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.getByRole('button', { name: 'Enviar solicitud' }).click();
    await page.getByRole('heading', { name: 'Recibimos su solicitud.' }).waitFor();
    const reference = (await page.locator('.ref').textContent())!;
    expect(reference).toMatch(/^PRM-\d{4}-\d{6}$/);
    await page.screenshot({ path: join(shots, 'portal-request-es.png'), fullPage: true });
    // Staff find it in the queue like any contact, even with nothing written but the answers.
    const found = (await staff('get', `/api/inbox?view=queue&q=${reference}`)).body.conversations;
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ channel: 'portal', preview: 'Solicitar un permiso de estacionamiento residencial' });
  });
});
