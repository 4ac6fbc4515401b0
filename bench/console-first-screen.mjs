#!/usr/bin/env node
// Console with 10,000 open conversations: how long the first screen's API calls take, and how long until the
// inbox shows its first rows in Chromium. A measurement, not a test: it prints numbers and never fails on speed.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/console-first-screen.mjs
//
// It makes (and drops) its own database on that server, starts the built server against it, seeds 10,000 open
// conversations with SQL, then measures. Needs `npm run build` first and Chromium for the browser part.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('..', import.meta.url));
const OPEN = Number(process.env.BENCH_OPEN_CASES ?? 10_000);
const ROUNDS = 20;
const adminUrl = process.env.DATABASE_URL;
if (!adminUrl) {
  console.error('Set DATABASE_URL to a PostgreSQL server (a throw-away database is made on it).');
  process.exit(2);
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const dbName = `cb_bench_${process.pid}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database ${dbName}`);
const url = new URL(adminUrl);
url.pathname = `/${dbName}`;
const port = await freePort();
const password = 'bench-password-123';
const base = `http://127.0.0.1:${port}`;

const server = spawn(process.execPath, [join(root, 'server/dist/index.js')], {
  env: {
    ...process.env,
    PORT: String(port),
    PUBLIC_BASE_URL: base,
    DATABASE_URL: url.toString(),
    REDIS_URL: '',
    DEMO_MODE: 'true',
    NODE_ENV: 'development',
    CASEBRIDGE_DEMO_PASSWORD: password,
    SESSION_SECRET: 'bench-secret-bench-secret-bench-secret-42',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});

async function cleanup() {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r)).catch(() => undefined);
  await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
  await admin.end();
}

try {
  for (let i = 0; ; i++) {
    const up = await fetch(`${base}/api/health`).then((r) => r.ok).catch(() => false);
    if (up) break;
    if (i > 120) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 250));
  }

  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  const seedStart = performance.now();
  await db.query(`
    do $$
    declare a uuid; g uuid; agent uuid; c uuid; ci uuid; k uuid; v uuid; i int;
    begin
      select id into a from agencies where slug = 'springfield';
      select id into g from groups where agency_id = a and is_default;
      select id into agent from users where email = 'agent@demo.gov';
      for i in 1..${OPEN} loop
        insert into constituents (agency_id, display_name, email, phone)
          values (a, 'Resident ' || i, 'resident' || i || '@example.org', '+1555' || lpad(i::text, 7, '0')) returning id into c;
        insert into channel_identities (agency_id, constituent_id, channel, address)
          values (a, c, 'web', gen_random_uuid()::text) returning id into ci;
        insert into cases (agency_id, reference, title, constituent_id, group_id, assignee_id, status)
          values (a, 'BEN-2026-' || lpad(i::text, 6, '0'), 'Web chat', c, g,
                  case when i % 3 = 0 then null else agent end, case when i % 3 = 0 then 'new' else 'open' end)
          returning id into k;
        insert into conversations (agency_id, constituent_id, channel_identity_id, channel, group_id, case_id, status,
                                   assignee_id, created_at, updated_at, last_seq)
          values (a, c, ci, 'web', g, k, case when i % 3 = 0 then 'queued' else 'active' end,
                  case when i % 3 = 0 then null else agent end,
                  now() - make_interval(secs => i), now() - make_interval(secs => i), 1)
          returning id into v;
        insert into messages (conversation_id, seq, author_kind, author_constituent_id, body, channel)
          values (v, 1, 'constituent', c, 'Question number ' || i || ' about my bin collection', 'web');
      end loop;
    end $$;
    analyze;
  `);
  const seedMs = performance.now() - seedStart;
  await db.end();

  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'agent@demo.gov', password }),
  });
  const cookie = login.headers.get('set-cookie').split(';')[0];

  // The calls the console makes for its first screen, each timed over several rounds.
  const calls = {
    'GET /api/auth/me': '/api/auth/me',
    'GET /api/inbox (queue, 50)': '/api/inbox?view=queue&limit=50',
    'GET /api/inbox (all open, 50)': '/api/inbox?view=open&limit=50',
    'GET /api/inbox/counts': '/api/inbox/counts',
    'GET /api/staff': '/api/staff',
    'GET /api/inbox (search "resident 777")': '/api/inbox?view=open&limit=50&q=resident%20777',
  };
  const results = {};
  for (const [name, path] of Object.entries(calls)) {
    const times = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now();
      const res = await fetch(`${base}${path}`, { headers: { cookie } });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
      times.push(performance.now() - t);
    }
    times.sort((x, y) => x - y);
    results[name] = { p50: times[Math.floor(ROUNDS / 2)], p95: times[Math.floor(ROUNDS * 0.95) - 1] };
  }
  const counts = await (await fetch(`${base}/api/inbox/counts`, { headers: { cookie } })).json();

  // First screen in Chromium: from navigation to the first inbox rows on screen.
  let browser = null;
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  const firstScreen = [];
  if (existsSync(chromium)) {
    const { chromium: pw } = await import('playwright-core');
    browser = await pw.launch({
      executablePath: chromium,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    for (let i = 0; i < 5; i++) {
      const ctx = await browser.newContext();
      await ctx.addCookies([{ name: 'cb_session', value: cookie.split('=')[1], url: base }]);
      const page = await ctx.newPage();
      const t = performance.now();
      await page.goto(`${base}/console`);
      await page.getByRole('link', { name: /Resident/ }).first().waitFor();
      firstScreen.push(performance.now() - t);
      await ctx.close();
    }
    await browser.close();
    firstScreen.sort((x, y) => x - y);
  }

  const ms = (x) => `${x.toFixed(1)} ms`;
  const lines = [
    `## Console first screen with ${OPEN.toLocaleString('en')} open conversations (PostgreSQL)`,
    '',
    `Seeded in ${(seedMs / 1000).toFixed(1)} s; counts: ${JSON.stringify(counts)}.`,
    '',
    '| call | p50 | p95 |',
    '|---|---|---|',
    ...Object.entries(results).map(([k, v]) => `| ${k} | ${ms(v.p50)} | ${ms(v.p95)} |`),
    '',
    firstScreen.length
      ? `Chromium, navigation to first inbox rows visible (5 runs): median ${ms(firstScreen[2])}, worst ${ms(firstScreen[4])}.`
      : 'Chromium not found: browser part skipped.',
  ];
  console.log(lines.join('\n'));
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(
    join(root, 'bench/results/console-first-screen.json'),
    JSON.stringify({ openConversations: OPEN, seedMs, counts, api: results, firstScreenMs: firstScreen, at: new Date().toISOString() }, null, 2),
  );
} finally {
  await cleanup();
}
