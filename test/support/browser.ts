import { existsSync } from 'node:fs';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(chromiumPath);

/** Debian's Chromium, headless, with nothing reaching beyond loopback. */
export function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      ...extraArgs,
    ],
  });
}

export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/** axe violations on the page (every frame), as short readable strings for a clear failure message. */
export async function axeViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(WCAG_TAGS).analyze();
  return result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`,
  );
}

/**
 * Holds every Socket.IO WebSocket the context opens until the returned function is called: a line that takes
 * its time to open them, while pages and API calls load at once.
 */
export async function holdWebSockets(ctx: BrowserContext): Promise<() => void> {
  let release!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  await ctx.routeWebSocket(/socket\.io/, async (ws) => {
    await opened;
    ws.connectToServer();
  });
  return release;
}

/** A staff member signed in to the console in a fresh browser context, waiting until it is live. */
export async function consoleSignIn(
  browser: Browser,
  baseUrl: string,
  email: string,
  password: string,
  viewport = { width: 1400, height: 1000 },
): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  await page.goto(`${baseUrl}/console/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Password').press('Enter');
  await page.getByText('Live', { exact: true }).waitFor();
  return { ctx, page };
}
