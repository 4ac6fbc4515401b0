import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import type { ConversationSummary, Partner } from '@casebridge/shared';
import { axeViolations, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, staffApi, startTestServer, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

// Two instances, three browsers (constituent, agent at each agency): slower than the API tests.
jest.setTimeout(120_000);

const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

describe('Service Exchange in Chromium', () => {
  let A: Harness; // City of Springfield
  let B: Harness; // the partner agency
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    [A, B] = await Promise.all([startTestServer('pglite', { serveWeb: true }), startTestServer('pglite', { serveWeb: true })]);
    browser = await launchBrowser();
    const [aAdmin, bAdmin] = await Promise.all([A.login('admin@demo.gov'), B.login('admin@demo.gov')]);
    const pB = (
      await staffApi(A, aAdmin)
        .post('/api/exchange/partners', { name: 'County Benefits Office', baseUrl: B.url, manifest: { caseFields: ['title'], constituent: ['name'], timeline: ['public_messages'] } })
        .expect(201)
    ).body as Partner;
    const pA = (
      await staffApi(B, bAdmin).post('/api/exchange/partners', { name: 'City of Springfield', baseUrl: A.url, manifest: { timeline: ['public_messages'] } }).expect(201)
    ).body as Partner;
    await staffApi(A, aAdmin).post(`/api/exchange/partners/${pB.id}/their-keys`, { keyId: pA.ourKeys[0]!.keyId, publicKey: pA.ourKeys[0]!.publicKey }).expect(201);
    await staffApi(B, bAdmin).post(`/api/exchange/partners/${pA.id}/their-keys`, { keyId: pB.ourKeys[0]!.keyId, publicKey: pB.ourKeys[0]!.publicKey }).expect(201);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await browser?.close();
    await Promise.all([A?.close(), B?.close()]);
  });

  async function newPage(): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    contexts.push(ctx);
    return ctx.newPage();
  }
  async function signIn(h: Harness, email: string): Promise<Page> {
    const page = await newPage();
    await page.goto(`${h.url}/console`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(DEMO_PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.getByText('Live', { exact: true }).waitFor();
    return page;
  }

  it('an agent hands a live chat to the partner agency; its agent accepts and replies; the widget shows who helps now', async () => {
    // Agents are signed in at both agencies (live chat is offered only while someone is there).
    const aPage = await signIn(A, 'agent@demo.gov');
    const bPage = await signIn(B, 'agent2@demo.gov');

    // The constituent starts a chat in the widget on Springfield's site.
    const site = await newPage();
    await site.goto(`${A.url}/demo`);
    await site.getByRole('button', { name: 'Chat with us' }).click();
    const widget: FrameLocator = site.frameLocator('iframe[title="Chat"]');
    await widget.getByLabel('Your name').fill('Pat Resident');
    await widget.getByLabel('Your message (optional)').fill('My benefits card never arrived');
    await widget.getByRole('button', { name: 'Start chat' }).click();
    await widget.getByRole('log').waitFor();

    // Avery takes it and offers it to the partner agency from the conversation page.
    const avery = await A.login('agent@demo.gov');
    const [conv] = ((await staffApi(A, avery).get('/api/inbox?view=queue').expect(200)).body.conversations as ConversationSummary[]).filter((c) => c.constituentName === 'Pat Resident');
    // Opened first, and taken in the page once it is live: a page load reconnects the console, and work held but
    // unanswered by someone without a socket for longer than the presence grace (short in tests) goes back to the queue.
    await aPage.goto(`${A.url}/console/conversations/${conv!.id}`);
    await aPage.getByText('Live', { exact: true }).waitFor();
    await aPage.getByRole('main').getByRole('button', { name: 'Take', exact: true }).click();
    await aPage.getByRole('button', { name: 'Offer to partner agency' }).click({ timeout: 15_000 }).catch(async (err: unknown) => {
      await aPage.screenshot({ path: join(shots, 'exchange-offer-missing.png') });
      throw err;
    });
    const dialog = aPage.getByRole('dialog', { name: 'Offer to a partner agency' });
    await dialog.getByRole('button', { name: 'Send offer' }).click();
    await dialog.getByText('Say why you are handing this over.').waitFor();
    expect(await dialog.getByLabel('Note for the partner').getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(aPage)).resolves.toEqual([]);
    await aPage.screenshot({ path: join(shots, 'exchange-offer-dialog.png') });
    await dialog.getByLabel('Note for the partner').fill('Benefits card: your office issues it');
    await dialog.getByRole('button', { name: 'Send offer' }).click();
    await aPage.getByText(/Offered to County Benefits Office, waiting for them to accept/).waitFor();

    // Jordan, at the partner agency, sees the offer with where it came from, and accepts it.
    await bPage.getByRole('link', { name: 'Partner offers' }).click();
    await bPage.getByRole('heading', { name: 'Live chat from City of Springfield' }).waitFor({ timeout: 20_000 });
    await bPage.getByText('Benefits card: your office issues it').waitFor();
    await expect(axeViolations(bPage)).resolves.toEqual([]);
    await bPage.screenshot({ path: join(shots, 'exchange-incoming.png'), fullPage: true });
    await bPage.getByRole('button', { name: 'Accept' }).click();
    await bPage.waitForURL(/\/console\/conversations\//);
    await bPage.getByText(/Came from City of Springfield/).waitFor();
    await bPage.getByText('My benefits card never arrived').first().waitFor();

    // The constituent is told plainly who is helping now, in the same widget.
    await widget.getByText(/County Benefits Office is now helping you/).waitFor({ timeout: 20_000 });

    // Jordan replies; it reaches the widget on Springfield's site. The constituent answers; Jordan sees it.
    await bPage.getByLabel('Reply to the constituent').fill('A new card is on its way.');
    await bPage.getByLabel('Reply to the constituent').press('Enter');
    await widget.getByText('Jordan Agent (County Benefits Office): A new card is on its way.').waitFor({ timeout: 20_000 });
    await widget.getByLabel('Type your message').fill('Thank you!');
    await widget.getByLabel('Type your message').press('Enter');
    await bPage.getByText('Thank you!').waitFor({ timeout: 20_000 });
    await expect(axeViolations(bPage)).resolves.toEqual([]);
    await bPage.screenshot({ path: join(shots, 'exchange-partner-conversation.png') });

    // Springfield keeps a read-only view that says where the conversation went.
    await aPage.getByText(/Handed to County Benefits Office/).waitFor({ timeout: 20_000 });
    await aPage.getByText('Jordan Agent (County Benefits Office): A new card is on its way.').waitFor();
    await expect(axeViolations(aPage)).resolves.toEqual([]);
    await aPage.screenshot({ path: join(shots, 'exchange-handed.png') });
    await site.screenshot({ path: join(shots, 'exchange-widget.png') });

    // The case page says the same, and its timeline reads the handoff as sentences.
    await aPage.goto(`${A.url}/console/cases/${conv!.caseId}`);
    await aPage.getByText(/Handed to County Benefits Office/).waitFor();
    await aPage.getByText(/Avery Agent offered this to County Benefits Office: “Benefits card: your office issues it”/).waitFor();
    await aPage.getByText(/County Benefits Office accepted \(their case/).waitFor();
    await expect(axeViolations(aPage)).resolves.toEqual([]);
    await aPage.screenshot({ path: join(shots, 'exchange-case.png') });
  });

  it('the partner declines with a reason; the chat comes back to the queue in its place and says why', async () => {
    // Jordan is already looking at Partner offers when the offer comes: it appears without a reload, pushed
    // (well before the page's 15 s fallback look).
    const bPage = await signIn(B, 'agent2@demo.gov');
    await bPage.getByRole('link', { name: 'Partner offers' }).click();
    await bPage.getByRole('heading', { name: 'Offers from partner agencies' }).waitFor();
    await bPage.waitForTimeout(500);

    const { token } = await A.widgetSession();
    const conv = await A.startConversation(token, { name: 'Declined Resident', message: 'Is this the right office?' });
    const avery = await A.login('agent@demo.gov');
    await staffApi(A, avery).post(`/api/conversations/${conv.id}/claim`).expect(200);
    await staffApi(A, avery)
      .post('/api/exchange/handoffs', { partnerId: (await staffApi(A, avery).get('/api/exchange/partners/options').expect(200)).body.partners[0].id, conversationId: conv.id, note: 'Maybe yours?' })
      .expect(201);
    const card = bPage.getByRole('listitem').filter({ hasText: 'Maybe yours?' });
    await card.waitFor({ timeout: 8_000 });
    await card.getByRole('button', { name: 'Decline…' }).click();
    await card.getByRole('button', { name: 'Decline', exact: true }).click();
    await card.getByText('Say why you decline: the other agency sees it.').waitFor();
    expect(await card.getByLabel('Why decline?').getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(bPage)).resolves.toEqual([]);
    await card.getByLabel('Why decline?').fill('We only handle county benefits');
    await card.getByRole('button', { name: 'Decline', exact: true }).click();
    await bPage.getByText(/Declined\. City of Springfield gets the work back/).waitFor();

    const aPage = await signIn(A, 'agent@demo.gov');
    await aPage.goto(`${A.url}/console/conversations/${conv.id}`);
    await aPage.getByText(/County Benefits Office declined: “We only handle county benefits”\. The conversation came back to the queue in its place\./).waitFor({ timeout: 20_000 });
    await expect(axeViolations(aPage)).resolves.toEqual([]);
    await aPage.screenshot({ path: join(shots, 'exchange-declined.png') });
  });

  it('the admin Partners page shows partners, the manifest and keys, with errors next to the field', async () => {
    const page = await signIn(A, 'admin@demo.gov');
    await page.getByRole('link', { name: 'Partners' }).click();
    await page.getByRole('heading', { name: 'Partner agencies', level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'County Benefits Office', exact: true }).waitFor();
    expect(await page.getByLabel('Name', { exact: true }).isChecked()).toBe(true);
    expect(await page.getByLabel('Email address').isChecked()).toBe(false);
    await expect(axeViolations(page)).resolves.toEqual([]);
    await page.screenshot({ path: join(shots, 'exchange-partners.png'), fullPage: true });

    await page.getByRole('button', { name: 'Add a partner agency' }).click();
    await page.getByLabel('Display name').fill('Metadata Service');
    await page.getByLabel('Base URL of their CaseBridge').fill('http://169.254.169.254');
    await page.getByRole('button', { name: 'Add partner' }).click();
    await page.getByRole('alert').filter({ hasText: 'Check the highlighted fields.' }).waitFor();
    expect(await page.getByLabel('Base URL of their CaseBridge').getAttribute('aria-invalid')).toBe('true');
    await page.getByText(/an https:\/\/ origin/).waitFor();
    await expect(axeViolations(page)).resolves.toEqual([]);
  });
});
