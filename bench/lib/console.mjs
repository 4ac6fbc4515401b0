// L1: the agent console with 10,000 open conversations (PostgreSQL). Seeds them with SQL in a throw-away
// database, times the first screen's API calls and, with Chromium, navigation → first inbox rows visible.
// (bench/console-first-screen.mjs runs this block on its own.)
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { startNode, DEMO_PASSWORD } from './infra.mjs';

const ROUNDS = 20;

export async function consoleFirstScreen({ adminUrl, browser = true, open = 10_000, log = () => {} }) {
  const dbName = `cb_l1_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const node = await startNode({ DATABASE_URL: url.toString() }, { label: 'L1 node' });
  const base = node.url;
  try {
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
        for i in 1..${open} loop
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
    log(`  L1: seeded ${open} open conversations in ${(seedMs / 1000).toFixed(1)} s`);

    const login = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'agent@demo.gov', password: DEMO_PASSWORD }),
    });
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const get = async (path) => {
      const t = performance.now();
      const res = await fetch(`${base}${path}`, { headers: { cookie } });
      const body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
      return { ms: performance.now() - t, bytes: body.length, gzipBytes: gzipSync(body).length };
    };
    const pct = (xs, p) => [...xs].sort((x, y) => x - y)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)];

    // The calls the console makes for its first screen, each timed over several rounds.
    const calls = {
      'GET /api/auth/me': '/api/auth/me',
      'GET /api/inbox (queue, 50)': '/api/inbox?view=queue&limit=50',
      'GET /api/inbox (all open, 50)': '/api/inbox?view=open&limit=50',
      'GET /api/inbox/counts': '/api/inbox/counts',
      'GET /api/staff': '/api/staff',
      'GET /api/inbox (search "resident 777")': '/api/inbox?view=open&limit=50&q=resident%20777',
    };
    const api = {};
    for (const [name, path] of Object.entries(calls)) {
      const runs = [];
      for (let i = 0; i < ROUNDS; i++) runs.push(await get(path));
      const ms = runs.map((r) => r.ms);
      api[name] = { p50: pct(ms, 50), p95: pct(ms, 95), bytes: runs[0].bytes, gzipBytes: runs[0].gzipBytes };
    }
    // The first screen as the console loads it: the queue's first page and the counts, together.
    const screen = [];
    let gz = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now();
      const [a, b] = await Promise.all([get('/api/inbox?view=queue&limit=50'), get('/api/inbox/counts')]);
      screen.push(performance.now() - t);
      gz = a.gzipBytes + b.gzipBytes;
    }
    const counts = await (await fetch(`${base}/api/inbox/counts`, { headers: { cookie } })).json();

    let browserResult = null;
    const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
    if (browser && existsSync(chromium)) {
      const { chromium: pw } = await import('playwright-core');
      const b = await pw.launch({
        executablePath: chromium,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
      });
      try {
        // Cold: a fresh profile (nothing cached). Warm: the agent opens the console again in the same browser, so
        // the immutable scripts and styles come from its cache while every API call still goes to the server.
        const ctx = await b.newContext();
        await ctx.addCookies([{ name: 'cb_session', value: cookie.split('=')[1], url: base }]);
        const runs = [];
        try {
          for (let i = 0; i < 5; i++) {
            const page = await ctx.newPage();
            const t = performance.now();
            await page.goto(`${base}/console`);
            await page.getByRole('link', { name: /Resident/ }).first().waitFor({ timeout: 15_000 });
            runs.push(performance.now() - t);
            await page.close();
          }
        } finally {
          await ctx.close();
        }
        const warm = runs.slice(1).sort((x, y) => x - y);
        browserResult = { runs, coldMs: runs[0], warmMedianMs: warm[Math.floor(warm.length / 2)] };
      } finally {
        await b.close();
      }
    } else if (browser) {
      browserResult = null;
      log('  L1: Chromium not found; browser part skipped');
    }
    return {
      open,
      seedMs,
      counts,
      api,
      firstScreenP50Ms: pct(screen, 50),
      firstScreenP95Ms: pct(screen, 95),
      firstScreenGzipKb: Math.round((gz / 1024) * 10) / 10,
      browser: browserResult,
    };
  } finally {
    await node.stop();
    await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
    await admin.end();
  }
}
