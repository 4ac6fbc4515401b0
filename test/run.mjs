#!/usr/bin/env node
// `npm test` after the build: picks the test tiers this machine can run, says why it skips any,
// runs them in one jest invocation and ends with one line `N passed, N failed` (CI reads it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = { ...process.env };
const chromium = env.CHROMIUM_PATH || '/usr/bin/chromium';

const tiers = ['server'];
const notes = [];
notes.push(
  env.DATABASE_URL
    ? 'tier server: integration suite on PGlite and on PostgreSQL (DATABASE_URL is set)'
    : 'tier server: integration suite on PGlite only — set DATABASE_URL=postgres://… to also run it on PostgreSQL',
);
if (env.REDIS_URL && env.DATABASE_URL) tiers.push('multinode');
else notes.push(`tier skipped: multinode — ${env.REDIS_URL ? 'DATABASE_URL' : 'REDIS_URL'} is not set (several nodes need PostgreSQL via DATABASE_URL and Redis via REDIS_URL)`);
// Fault tests start their own Redis and PostgreSQL clusters from the Debian binaries, next to the shared ones.
const hasBinary = (name) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
const pgBins = existsSync('/usr/lib/postgresql');
if (env.REDIS_URL && env.DATABASE_URL && hasBinary('redis-server') && pgBins) tiers.push('reliability');
else notes.push('tier skipped: reliability — needs DATABASE_URL, REDIS_URL, redis-server and the PostgreSQL server binaries (/usr/lib/postgresql)');
if (existsSync(chromium)) {
  tiers.push('browser');
  env.CHROMIUM_PATH = chromium;
} else {
  notes.push(`tier skipped: browser — no Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM_PATH)`);
}
// `TEST_TIERS=reliability node test/run.mjs` (npm run test:reliability) runs only the named tiers.
if (env.TEST_TIERS) {
  const wanted = env.TEST_TIERS.split(',').map((t) => t.trim());
  const missing = wanted.filter((t) => !tiers.includes(t));
  if (missing.length) notes.push(`asked for tiers this machine cannot run: ${missing.join(', ')}`);
  tiers.splice(0, tiers.length, ...tiers.filter((t) => wanted.includes(t)));
}
for (const n of notes) console.log(n);
console.log(`running tiers: ${tiers.join(', ')}`);

const out = mkdtempSync(join(tmpdir(), 'cb-jest-'));
const outputFile = join(out, 'results.json');
env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim();
const run = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules/jest/bin/jest.js'),
    '--selectProjects',
    ...tiers,
    '--json',
    '--outputFile',
    outputFile,
    '--maxWorkers=2',
    ...process.argv.slice(2),
  ],
  { cwd: root, env, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(outputFile)) {
  const r = JSON.parse(readFileSync(outputFile, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
  // A file that fails to load has no tests to count; it must still count as a failure.
  for (const s of r.testResults ?? []) {
    if (s.status === 'failed' && (s.assertionResults ?? []).every((a) => a.status !== 'failed')) failed += 1;
  }
} else {
  console.log(`jest produced no results (exit ${run.status ?? run.signal})`);
  failed += 1;
}
rmSync(out, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
