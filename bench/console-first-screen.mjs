#!/usr/bin/env node
// Console with 10,000 open conversations: how long the first screen's API calls take, and how long until the
// inbox shows its first rows in Chromium. A measurement, not a test: it prints numbers and never fails on speed.
// `npm run bench` runs the same block (L1) among the others; this runs it alone.
//
//   npm run bench:console                                   (starts a private PostgreSQL cluster)
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:console   (uses that server)
//
// Needs `npm run build` first, and Chromium (CHROMIUM_PATH, default /usr/bin/chromium) for the browser part.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkBuild, cleanupAll, installSignalHandlers, root, startPostgres } from './lib/infra.mjs';
import { consoleFirstScreen } from './lib/console.mjs';

installSignalHandlers();
let code = 0;
try {
  checkBuild({ needWeb: true });
  const adminUrl = process.env.DATABASE_URL ?? (await startPostgres()).url();
  const open = Number(process.env.BENCH_OPEN_CASES ?? 10_000);
  const r = await consoleFirstScreen({ adminUrl, open, browser: true, log: (...a) => console.error(...a) });
  const ms = (x) => `${x.toFixed(1)} ms`;
  console.log(
    [
      `## Console first screen with ${open.toLocaleString('en')} open conversations (PostgreSQL)`,
      '',
      `Seeded in ${(r.seedMs / 1000).toFixed(1)} s; counts: ${JSON.stringify(r.counts)}.`,
      '',
      '| call | p50 | p95 | gzip bytes |',
      '|---|---|---|---|',
      ...Object.entries(r.api).map(([k, v]) => `| ${k} | ${ms(v.p50)} | ${ms(v.p95)} | ${v.gzipBytes} |`),
      '',
      `First screen (queue page + counts): p95 ${ms(r.firstScreenP95Ms)}, ${r.firstScreenGzipKb} KB gzip.`,
      r.browser
        ? `Chromium, navigation to first inbox rows visible (5 runs): cold ${ms(r.browser.coldMs)}, warm median ${ms(r.browser.warmMedianMs)}.`
        : 'Chromium not found: browser part skipped.',
    ].join('\n'),
  );
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/console-first-screen.json'), JSON.stringify({ ...r, at: new Date().toISOString() }, null, 2));
} catch (err) {
  console.error(err?.stack ?? err);
  code = 2;
} finally {
  await cleanupAll();
}
process.exit(code);
