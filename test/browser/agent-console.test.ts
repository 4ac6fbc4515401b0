import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import { axeViolations, holdWebSockets, launchBrowser } from '../support/browser.js';
import { DEMO_PASSWORD, eventually, startTestServer, uuid, type Harness } from '../support/harness.js';
import { repoRoot } from '../support/process.js';

// Real browsers and several servers: slower than the API tests.
jest.setTimeout(90_000);

const shots = join(repoRoot, 'test-results');
mkdirSync(shots, { recursive: true });

// Three people at once: a constituent on the demo page, and two agents in their consoles.
describe('the agent console, live with the widget, in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    h = await startTestServer('pglite', { serveWeb: true });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await browser?.close();
    await h?.close();
  });

  async function newPage(): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    contexts.push(ctx);
    return { ctx, page: await ctx.newPage() };
  }

  async function signIn(email: string): Promise<{ ctx: BrowserContext; page: Page }> {
    const s = await newPage();
    await s.page.goto(`${h.url}/console`);
    await s.page.getByLabel('Email').fill(email);
    await s.page.getByLabel('Password').fill(DEMO_PASSWORD);
    await s.page.getByLabel('Password').press('Enter');
    await s.page.getByRole('heading', { name: 'Inbox' }).waitFor();
    await s.page.getByText('Live', { exact: true }).waitFor();
    return s;
  }

  async function startWidgetChat(name: string, first: string): Promise<{ page: Page; widget: FrameLocator }> {
    const { page } = await newPage();
    await page.goto(`${h.url}/demo`);
    await page.getByRole('button', { name: 'Chat with us' }).click();
    const widget = page.frameLocator('iframe[title="Chat"]');
    await widget.getByLabel('Your name').fill(name);
    await widget.getByLabel('Your message (optional)').fill(first);
    await widget.getByRole('button', { name: 'Start chat' }).click();
    await widget.getByRole('log').waitFor();
    return { page, widget };
  }

  it('a chat arrives live, is taken, answered, noted, transferred and resolved — keyboard-friendly, 0 axe violations', async () => {
    const avery = await signIn('agent@demo.gov');
    const jordan = await signIn('agent2@demo.gov');
    const a = avery.page;
    const j = jordan.page;

    const { page: cPage, widget } = await startWidgetChat('Maria Lopez', 'The streetlight on Elm St is out');
    const row = a.getByRole('link', { name: /Maria Lopez/ });
    await row.waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.screenshot({ path: join(shots, 'console-inbox.png') });

    // Open it with the keyboard and take it with `t`.
    await row.focus();
    await a.keyboard.press('Enter');
    await a.getByRole('heading', { name: 'Maria Lopez', level: 1 }).waitFor();
    await a.getByRole('log').getByText('The streetlight on Elm St is out').waitFor();
    await a.keyboard.press('t');
    await a.getByText('You took this conversation.').waitFor();

    // Reply with Enter; Shift+Enter makes a new line inside the same message.
    const box = a.getByLabel('Reply to the constituent');
    await box.focus();
    await a.keyboard.type('Thanks Maria, I am on it.');
    await a.keyboard.press('Shift+Enter');
    await a.keyboard.type('Which block is it?');
    await a.keyboard.press('Enter');
    await widget.getByText(/Thanks Maria, I am on it\.\s+Which block is it\?/).waitFor();
    expect(await box.inputValue()).toBe('');

    // The constituent types and answers: typing shows, then the message arrives live.
    await widget.getByLabel('Type your message').pressSequentially('The 400 block', { delay: 20 });
    await a.getByText('Maria Lopez is typing…').waitFor();
    await widget.getByLabel('Type your message').press('Enter');
    await a.getByRole('log').getByText('The 400 block').waitFor();

    // An internal note (`n`), visibly different, never reaches the widget.
    await a.locator('body').click({ position: { x: 5, y: 300 } });
    await a.keyboard.press('n');
    await a.keyboard.type('Reported to public works, ticket PW-88');
    await a.keyboard.press('Enter');
    const note = a.locator('li.note', { hasText: 'Reported to public works, ticket PW-88' });
    await note.getByText('Internal note').waitFor();

    // Mention a colleague in a note: `@Jor` suggests Jordan, and Jordan is told at once.
    await a.keyboard.type('@Jor');
    await a.getByRole('option', { name: 'Jordan Agent' }).waitFor();
    await a.keyboard.press('Enter');
    await a.keyboard.type('can you call her tomorrow?');
    await a.keyboard.press('Enter');
    await j.getByText('Avery Agent mentioned you in').waitFor();
    expect(await j.getByRole('status').filter({ hasText: '@Jordan Agent can you call her tomorrow?' }).count()).toBe(1);

    // A canned response with `/`.
    await a.getByRole('radio', { name: 'Reply to constituent' }).check();
    await a.getByLabel('Reply to the constituent').fill('/one mo');
    await a.getByRole('option', { name: /One moment/ }).waitFor();
    await a.getByLabel('Reply to the constituent').press('Enter');
    expect(await a.getByLabel('Reply to the constituent').inputValue()).toMatch(/^Thank you, Maria Lopez\. Let me look into that/);
    await a.getByLabel('Reply to the constituent').press('Enter');
    await widget.getByText(/Thank you, Maria Lopez\. Let me look into that/).waitFor();

    // A file goes with a reply; the constituent gets it in the widget.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');
    await a.getByLabel('Attach a file').setInputFiles({ name: 'repair-map.png', mimeType: 'image/png', buffer: png });
    await a.getByRole('list', { name: 'Files to send' }).getByText(/repair-map\.png/).waitFor();
    await a.getByLabel('Reply to the constituent').fill('Here is where the crew will work');
    await a.getByLabel('Reply to the constituent').press('Enter');
    await widget.getByText('Here is where the crew will work').waitFor();
    await widget.getByText(/repair-map\.png/).waitFor();

    // The case panel: raise the priority; the timeline says so.
    await a.locator('aside').getByLabel('Priority', { exact: true }).selectOption('high');
    await a.getByText('Avery Agent changed the priority to High').waitFor();
    await a.getByLabel('New tag').fill('Streetlight');
    await a.getByLabel('New tag').press('Enter');
    await a.getByText('Avery Agent tagged streetlight').waitFor();
    await a.getByRole('list', { name: 'Tags' }).getByText('streetlight').waitFor();

    // Type the case and fill in its fields; a bad value is caught before it is sent.
    await a.locator('aside').getByLabel('Case type').selectOption({ label: 'Street issue' });
    await a.getByText('Avery Agent set the case type to Street issue').waitFor();
    await a.getByLabel('Issue (required)').selectOption('Streetlight out');
    await a.getByRole('textbox', { name: 'Location (required)' }).fill('400 block of Elm St');
    await a.getByRole('button', { name: 'Save fields' }).click();
    await a.getByText('Avery Agent updated Issue, Location').waitFor();

    // Awaiting info: the agent says what is needed, the constituent is told at once, and their answer reopens it.
    await a.locator('aside').getByLabel('Status', { exact: true }).selectOption('awaiting_info');
    await a.getByLabel('What do you need from the constituent?').fill('the number on the streetlight pole');
    await a.getByRole('button', { name: 'Ask and wait' }).click();
    await widget.getByText(/we need: the number on the streetlight pole/).waitFor();
    await widget.getByLabel('Type your message').fill('It says SL-4471');
    await widget.getByLabel('Type your message').press('Enter');
    await a.getByText('The constituent replied: the case is Open again').waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.screenshot({ path: join(shots, 'console-conversation.png') });
    await a.locator('aside').screenshot({ path: join(shots, 'console-case-panel.png') });
    expect(await widget.getByText('Reported to public works').count()).toBe(0);

    // Transfer to Jordan with `x`: the dialog, then both consoles move live.
    await a.locator('body').click({ position: { x: 5, y: 300 } });
    await a.keyboard.press('x');
    const dialog = a.getByRole('dialog', { name: 'Transfer conversation' });
    await dialog.waitFor();
    const jordanOption = await dialog.locator('option', { hasText: 'Jordan Agent' }).getAttribute('value');
    await dialog.getByLabel('Transfer to').selectOption(jordanOption!);
    await dialog.getByLabel('Note for the next person (internal)').fill('Needs a follow-up call tomorrow');
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.screenshot({ path: join(shots, 'console-transfer-dialog.png') });
    await dialog.getByRole('button', { name: 'Transfer' }).click();
    await a.getByText('Transferred to Jordan Agent.').waitFor();
    await a.getByText('Jordan Agent is handling this conversation. You can add internal notes.').waitFor();

    await j.getByRole('button', { name: /^Mine/ }).click();
    await j.getByRole('link', { name: /Maria Lopez/ }).click();
    await j.getByText('Avery Agent transferred this conversation to Jordan Agent: Needs a follow-up call tomorrow').waitFor();
    await j.getByText('Reported to public works, ticket PW-88').waitFor();

    // The Street issue playbook's required steps come before a decision.
    for (const step of ['Confirm the exact location', 'Create the work order', 'Confirm the repair is done']) {
      await j.locator('aside').getByLabel(`${step} (required)`).check();
      await j.getByText(`Done: ${step}.`).waitFor();
    }
    // Jordan ends it and resolves the case; the constituent is told what happens next.
    await j.getByRole('button', { name: 'End conversation' }).click();
    const end = j.getByRole('dialog', { name: 'End conversation' });
    await expect(axeViolations(j)).resolves.toEqual([]);
    await j.screenshot({ path: join(shots, 'console-end-dialog.png') });
    await end.getByRole('button', { name: 'End conversation' }).click();
    await j.getByText('Conversation ended and case resolved.').waitFor();
    await widget.getByText(/Your case reference is SPR-\d{4}-\d{6}/).waitFor();
    await widget.getByText('This chat has ended.').waitFor();
    await j.getByText(/changed the status from Open to Resolved/).waitFor();
    await a.getByText(/changed the status from Open to Resolved/).waitFor();
    expect(await widget.getByText('Needs a follow-up call').count()).toBe(0);
    await cPage.close();
  });

  it('two agents take the same chat at once: one wins, the other is told who took it', async () => {
    const avery = await signIn('agent@demo.gov');
    const jordan = await signIn('agent2@demo.gov');
    const { token } = await h.widgetSession();
    await h.startConversation(token, { name: 'Race Resident' });
    const takeA = avery.page.getByRole('button', { name: 'Take conversation with Race Resident' });
    const takeJ = jordan.page.getByRole('button', { name: 'Take conversation with Race Resident' });
    await Promise.all([takeA.waitFor(), takeJ.waitFor()]);
    // Both clicks leave at the same instant, before either answer arrives: the race a fast queue really has.
    // (Each page clicks on a shared wall-clock deadline; clicking one after the other could let the first
    // answer remove the second page's button before its click.)
    const at = Date.now() + 400;
    const pressAt = (p: Page) =>
      p.evaluate(
        (when) =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              (document.querySelector('button[aria-label="Take conversation with Race Resident"]') as HTMLButtonElement).click();
              resolve();
            }, when - Date.now()),
          ),
        at,
      );
    await Promise.all([pressAt(avery.page), pressAt(jordan.page)]);
    // The notice is hidden while empty; include it so an answer not yet arrived reads as '' instead of waiting.
    const said = (p: Page) =>
      p.getByRole('navigation', { name: 'Inbox' }).getByRole('status', { includeHidden: true }).first().textContent();
    let outcomes: (string | null)[] = [];
    await eventually(async () => {
      outcomes = [await said(avery.page), await said(jordan.page)];
      return outcomes.every(Boolean);
    }, true, 25_000).catch(async (err: Error) => {
      // Keep what each agent saw, so a failure under CI load can be read instead of guessed at.
      await avery.page.screenshot({ path: join(shots, 'claim-race-avery.png') });
      await jordan.page.screenshot({ path: join(shots, 'claim-race-jordan.png') });
      throw new Error(`${err.message}; the notices read ${JSON.stringify(outcomes)}`);
    });
    const averyWon = outcomes[0] === 'You took the conversation with Race Resident.';
    expect(outcomes.sort()).toEqual(
      [`${averyWon ? 'Avery Agent' : 'Jordan Agent'} has already taken this conversation`, 'You took the conversation with Race Resident.'].sort(),
    );
    await (averyWon ? avery.page : jordan.page).getByRole('heading', { name: 'Race Resident', level: 1 }).waitFor();
  });

  /** Avery, signed in, takes a new chat from her inbox; the constituent's socket is open. */
  async function averyTakes(name: string) {
    const avery = await signIn('agent@demo.gov');
    const a = avery.page;
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name });
    const constituent = await h.constituentSocket(token);
    await a.getByRole('link', { name: new RegExp(name) }).click();
    await a.getByRole('button', { name: 'Take', exact: true }).click();
    await a.getByText('You took this conversation.').waitFor();
    return { avery, a, token, conv, constituent };
  }

  it('after a network drop the console shows it is reconnecting and fills the gap, with no duplicates', async () => {
    const { avery, a, token, conv, constituent } = await averyTakes('Gap Resident');

    await avery.ctx.setOffline(true);
    await a.getByText('Reconnecting…').waitFor({ timeout: 20_000 });
    for (const body of ['First while you were away', 'Second while you were away']) {
      const res = await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body });
      expect(res.ok).toBe(true);
    }
    // A reply typed during the drop waits and goes out once when the line is back.
    await a.getByLabel('Reply to the constituent').fill('Typed during the drop');
    await a.getByLabel('Reply to the constituent').press('Enter');
    await a.getByText('Sending…').waitFor();
    await avery.ctx.setOffline(false);
    await a.getByText('Live', { exact: true }).waitFor({ timeout: 20_000 });
    const log = a.getByRole('log');
    await log.getByText('Second while you were away').waitFor();
    await log.getByText('Typed during the drop').waitFor();
    await eventually(() => a.getByText('Sending…').count(), 0);
    expect(await log.getByText('First while you were away').count()).toBe(1);
    expect(await log.getByText('Typed during the drop').count()).toBe(1);
    const stored = await h.http
      .get(`/api/conversations/${conv.id}/messages`)
      .set('Authorization', `Bearer ${token}`);
    expect(stored.body.messages.filter((m: { body: string }) => m.body === 'Typed during the drop')).toHaveLength(1);
  });

  it('on a slow network, a conversation page opened before its socket is live misses nothing and sends what was typed', async () => {
    const { avery, a, token, conv, constituent } = await averyTakes('Slow Line Resident');
    // Answered first: unanswered work of an agent without a socket for a moment goes back to the queue.
    await a.getByLabel('Reply to the constituent').fill('Hello, I am here');
    await a.getByLabel('Reply to the constituent').press('Enter');
    await a.getByRole('log').getByText('Hello, I am here').waitFor();

    // The page reloads over a line that takes seconds to open its WebSocket.
    const release = await holdWebSockets(avery.ctx);
    await a.reload();
    await a.getByRole('heading', { name: 'Slow Line Resident', level: 1 }).waitFor();
    await a.getByText('Connecting…').waitFor();
    const res = await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Written while your page loaded' });
    expect(res.ok).toBe(true);
    await a.getByLabel('Reply to the constituent').fill('Typed before the line was up');
    await a.getByLabel('Reply to the constituent').press('Enter');
    await a.getByText('Sending…').waitFor();

    release();
    await a.getByText('Live', { exact: true }).waitFor({ timeout: 20_000 });
    const log = a.getByRole('log');
    await log.getByText('Written while your page loaded').waitFor();
    await log.getByText('Typed before the line was up').waitFor();
    await eventually(() => a.getByText('Sending…').count(), 0);
    expect(await log.getByText('Typed before the line was up').count()).toBe(1);
    const stored = await h.http.get(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`);
    expect(stored.body.messages.filter((m: { body: string }) => m.body === 'Typed before the line was up')).toHaveLength(1);
    await avery.ctx.unrouteAll();
  });

  it('a message that arrives while the page is still fetching the conversation is shown, not lost', async () => {
    const avery = await signIn('agent@demo.gov');
    const a = avery.page;
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Racing Resident', message: 'First words' });
    const constituent = await h.constituentSocket(token);
    // The page's first look at the messages is read by the server at once but answered late, as on a slow line.
    let release!: () => void;
    const answered = new Promise<void>((r) => (release = r));
    let read!: () => void;
    const wasRead = new Promise<void>((r) => (read = r));
    await a.route(/\/api\/conversations\/[^/]+\/messages\?afterSeq=0/, async (route) => {
      const response = await route.fetch();
      read();
      await answered;
      await route.fulfill({ response });
    });
    await a.goto(`${h.url}/console/conversations/${conv.id}`);
    await a.getByText('Live', { exact: true }).waitFor();
    await wasRead;
    // Written after that read: the page hears it live while its first look is still on the way.
    expect((await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Written during the look' })).ok).toBe(true);
    await a.waitForTimeout(300);
    release();
    const log = a.getByRole('log', { name: 'Case timeline' });
    await log.getByText('First words').waitFor();
    await log.getByText('Written during the look').waitFor({ timeout: 5000 });
    await a.unrouteAll();
  });

  it('opens a case by hand for a walk-in and works it on its own page', async () => {
    const { page: a } = await signIn('agent@demo.gov');
    await a.getByRole('button', { name: 'New case' }).click();
    const dialog = a.getByRole('dialog', { name: 'New case' });
    await dialog.getByRole('button', { name: 'Open case' }).click();
    await dialog.getByText('Give the case a title').waitFor();
    expect(await dialog.getByLabel('Title').getAttribute('aria-invalid')).toBe('true');
    await expect(axeViolations(a)).resolves.toEqual([]);
    await dialog.getByLabel('Title').fill('Pothole at Main and 3rd, reported at the front desk');
    await dialog.getByLabel('Case type').selectOption({ label: 'Street issue' });
    await dialog.getByLabel('Name').fill('Walk-in Wanda');
    await dialog.getByLabel('Email').fill('wanda@example.org');
    await dialog.getByRole('button', { name: 'Open case' }).click();
    await a.getByRole('heading', { name: 'Pothole at Main and 3rd, reported at the front desk' }).waitFor();
    await a.getByText('Avery Agent opened this case').waitFor();
    await a.getByLabel('Issue (required)').selectOption('Pothole');
    await a.getByRole('textbox', { name: 'Location (required)' }).fill('Main St and 3rd Ave');
    await a.getByRole('button', { name: 'Save fields' }).click();
    await a.getByText('Avery Agent updated Issue, Location').waitFor();
    // Resolving before the playbook's required steps says which are missing, and changes nothing.
    await a.locator('aside').getByLabel('Status', { exact: true }).selectOption('resolved');
    await a.getByText('Finish the required tasks first: Confirm the exact location, Create the work order, Confirm the repair is done').waitFor();
    for (const step of ['Confirm the exact location', 'Create the work order', 'Confirm the repair is done']) {
      await a.locator('aside').getByLabel(`${step} (required)`).check();
      await a.getByText(`Done: ${step}.`).waitFor();
    }
    await a.locator('aside').getByLabel('Status', { exact: true }).selectOption('resolved');
    await a.getByText('Avery Agent changed the status from Open to Resolved').waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await a.screenshot({ path: join(shots, 'console-case-page.png') });
  });

  it('an agent works a permit application through its playbook to a decision, with the SLA in view', async () => {
    const { token } = await h.widgetSession();
    const services = (await h.http.get('/api/widget/services').set('Authorization', `Bearer ${token}`)).body.services as { id: string; title: string }[];
    const permit = services.find((s) => s.title === 'Apply for a residential parking permit')!;
    const conv = await h.startConversation(token, { name: 'Penny Permit', serviceId: permit.id, message: 'I need a parking permit' });
    const { page: a } = await signIn('agent@demo.gov');
    await a.getByRole('link', { name: /Penny Permit/ }).click();
    await a.getByRole('heading', { name: 'Penny Permit', level: 1 }).waitFor();
    await a.getByRole('button', { name: 'Take', exact: true }).click();
    await a.getByText('You took this conversation.').waitFor();
    await a.getByLabel('Reply to the constituent').fill('Happy to help with your permit.');
    await a.getByLabel('Reply to the constituent').press('Enter');
    const panel = a.locator('aside');
    await panel.getByRole('heading', { name: 'Stage and playbook' }).waitFor();
    await panel.getByText('Next: Check the application is complete').waitFor();
    // The first response was made in time; the resolution clock runs.
    await panel.getByRole('list', { name: 'Service level targets' }).getByText('Met', { exact: true }).waitFor();
    await panel.getByText('On track').waitFor();

    // Moving on too early is refused with the missing step named.
    await panel.getByRole('button', { name: 'Move to Review' }).click();
    await a.getByText('Finish the required tasks first: Check the application is complete').waitFor();
    await panel.getByText('How').first().click();
    await panel.getByText('Plate, home address and zone must be filled in.').waitFor();
    await panel.getByLabel('License plate (required)').fill('PENNY 1');
    await panel.getByLabel('Home address (required)').fill('4 Birch Rd');
    await panel.getByLabel('Permit zone (required)').selectOption('D');
    await panel.getByRole('button', { name: 'Save fields' }).click();
    await a.getByText(/updated License plate, Home address, Permit zone/).waitFor();
    await panel.getByLabel('Check the application is complete (required)').check();
    await a.getByText('Done: Check the application is complete.').waitFor();
    await panel.getByRole('button', { name: 'Move to Review' }).click();
    await a.getByText('The case is now in Review.').waitFor();
    for (const step of ['Verify residency', 'Check zone eligibility']) {
      await panel.getByLabel(`${step} (required)`).check();
      await a.getByText(`Done: ${step}.`).waitFor();
    }
    await panel.getByRole('button', { name: 'Move to Process' }).click();
    await a.getByText('The case is now in Process.').waitFor();
    await panel.getByLabel('Issue the permit (required)').check();
    await a.getByText('Done: Issue the permit.').waitFor();
    await panel.getByRole('button', { name: 'Move to Decision' }).click();
    await a.getByText('The case is now in Decision.').waitFor();
    // The decision step sends its message to the constituent.
    await panel.getByLabel('Tell the applicant the decision (required)').check();
    await a.getByText('Done: Tell the applicant the decision.').waitFor();
    await a.getByRole('log').getByText(/your residential parking permit application has been decided/).waitFor();
    await panel.getByText('Done by Avery Agent').first().waitFor();
    await expect(axeViolations(a)).resolves.toEqual([]);
    await panel.screenshot({ path: join(shots, 'console-playbook.png') });
    await panel.getByLabel('Status', { exact: true }).selectOption('resolved');
    await a.getByText('Avery Agent changed the status from Open to Resolved').waitFor();
    await panel.getByText('Met', { exact: true }).nth(1).waitFor();
    expect(conv.caseReference).toMatch(/^PRM-/);
  });

  it("a conversation of another group's id in the URL says not found", async () => {
    const jordan = await signIn('agent2@demo.gov');
    const avery = await h.login('agent@demo.gov');
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Permit Resident' });
    const permits = avery.me.groups.find((g) => g.name === 'Permits')!.id;
    const sock = await h.staffSocket(avery);
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    await sock.emitWithAck('conversation:transfer', { conversationId: conv.id, toGroupId: permits });
    await jordan.page.goto(`${h.url}/console/conversations/${conv.id}`);
    await jordan.page.getByRole('heading', { name: 'Conversation not found' }).waitFor();
    expect(await jordan.page.getByText('Permit Resident').count()).toBe(0);
    await expect(axeViolations(jordan.page)).resolves.toEqual([]);
  });
});
