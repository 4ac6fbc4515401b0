#!/usr/bin/env node
// CaseBridge against the bare floors it is built on (issue #9, design in PERFORMANCE.md §6, targets §7).
//
//   npm run build && npm run bench            full mode  (≈ 6 min)
//   npm run bench:quick                       quick mode (≤ 2 min, CI)
//   node bench/perf.mjs --quick --only=B2,E1pg  a subset while developing
//
// Self-starting, loopback only: a private redis-server and initdb PostgreSQL cluster on random ports, PGlite in
// temp dirs, CaseBridge nodes as real processes (server/dist/index.js). Writes bench/results/<time>.json and
// bench/results/latest.md, prints the Markdown. Exit code: 1 on functional failures (lost messages, rows ≠ acks)
// or a ratio gate of §6.4; never on absolute speed. 2 when it could not run (no build, no PostgreSQL…).
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  root, wait, checkBuild, cpuWindow, startRedis, startPostgres, startNode, forkChild, cleanupAll, installSignalHandlers, freePort,
} from './lib/infra.mjs';
import { runStandardPhases } from './lib/load.mjs';
import { wsTransport, sioTransport, productTransport } from './lib/transports.mjs';
import { calibrate } from './lib/calibrate.mjs';
import { median } from './lib/stats.mjs';
import { idleWidgets } from './lib/idle.mjs';
import { supervisorFanout } from './lib/fanout.mjs';
import { consoleFirstScreen } from './lib/console.mjs';
import { renderMarkdown, computeRatios } from './lib/report.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const onlyArg = argv.find((a) => a.startsWith('--only='))?.slice(7);
const only = onlyArg ? new Set(onlyArg.split(',')) : null;
const want = (id) => !only || only.has(id);
const repsArg = argv.find((a) => a.startsWith('--reps='))?.slice(7);
// --profile: product nodes run with `node --cpu-prof`; the top frames are summarised into the results.
const profile = argv.includes('--profile');

const cfg = quick
  ? { mode: 'quick', warmup: 1, phase: 2, r1: 1000, r2: 4000, pairs: 100, closedPairs: 50, depth: 4, reps: 1, m1: 2000, browser: false, f1Seconds: 4, drain: 5, perRow: false }
  : { mode: 'full', warmup: 2, phase: 5, r1: 1000, r2: 4000, pairs: 100, closedPairs: 50, depth: 4, reps: 2, m1: 18000, browser: true, f1Seconds: 10, drain: 8, perRow: true };
if (repsArg) cfg.reps = Number(repsArg);

installSignalHandlers();
const started = Date.now();
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s]`, ...a);
// Bounded in time whatever happens: past the soft budget remaining blocks are skipped (noted); at the hard limit
// everything is stopped and whatever was measured is still written.
const softBudgetS = quick ? 200 : 420;
const overBudget = (what) => {
  if ((Date.now() - started) / 1000 < softBudgetS) return false;
  results.notes.push(`${what} skipped: the run passed its ${softBudgetS} s budget`);
  return true;
};
const hardLimit = setTimeout(async () => {
  log('hard time limit reached: writing what was measured and stopping');
  results.failures.push('hard time limit reached');
  try {
    writeOut();
  } catch {
    /* best effort */
  }
  await cleanupAll();
  process.exit(2);
}, (quick ? 5 : 10) * 60_000);
hardLimit.unref();

const results = {
  meta: {},
  variants: {},
  blocks: {},
  failures: [],
  notes: [],
};

async function meta() {
  const sh = (c) => {
    try {
      return execSync(c, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n$/, '');
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    commit: sh('git rev-parse --short HEAD').trim(),
    dirty: sh('git status --porcelain --untracked-files=no').split('\n').filter(Boolean).map((l) => l.slice(3)),
    command: `npm run bench${quick ? ':quick' : ''}${onlyArg ? ` -- --only=${onlyArg}` : ''}`,
    mode: cfg.mode,
    config: cfg,
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memGiB: Math.round(totalmem() / 2 ** 30),
    nofile: Number(sh('ulimit -n').trim()) || null,
    pinned: false,
    loadavgAtStart: (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function main() {
  let warnBuild;
  try {
    warnBuild = checkBuild({ needWeb: cfg.browser });
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  if (warnBuild) {
    log(`warning: ${warnBuild}`);
    results.notes.push(warnBuild);
  }
  results.meta = await meta();
  log(`mode ${cfg.mode}; ${results.meta.cpu}; commit ${results.meta.commit}${results.meta.dirty.length ? ` + changes in ${results.meta.dirty.join(', ')}` : ''}`);

  results.blocks.C0 = await calibrate(1000);
  log('C0', JSON.stringify(results.blocks.C0));

  const needPg = ['B3pg', 'E1pg', 'E2', 'M1', 'L1', 'F1'].some(want);
  const pgc = needPg ? await startPostgres() : null;
  if (pgc) {
    results.meta.postgres = pgc.version;
    log(`PostgreSQL on :${pgc.port} (${pgc.version})`);
  }
  const redis = want('E2') ? await startRedis() : null;
  const admin = pgc ? new pg.Client({ connectionString: pgc.url() }) : null;
  await admin?.connect();
  const newDb = async (name) => {
    await admin.query(`create database ${name}`);
    return pgc.url(name);
  };
  // A short-lived connection to one of the benchmark's databases.
  const withClient = async (url, fn) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const countRows = (url, ids) =>
    withClient(url, async (c) => {
      const { rows } = await c.query(
        `select count(*)::int as n from messages where conversation_id = any($1) and author_kind = 'constituent'`,
        [ids],
      );
      return rows[0].n;
    });

  // --profile: what PostgreSQL spent its time on during a product variant (pg_stat_statements is preloaded).
  const statements = {
    reset: (url) =>
      withClient(url, async (c) => {
        await c.query('create extension if not exists pg_stat_statements');
        await c.query('select pg_stat_statements_reset()');
      }),
    top: (url, n = 8) =>
      withClient(url, async (c) => {
        const { rows } = await c.query(
          `select calls::int, round(total_exec_time)::int as total_ms, round(mean_exec_time::numeric, 3)::float as mean_ms, rows::int,
                  left(regexp_replace(query, '\\s+', ' ', 'g'), 160) as query
           from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
           order by total_exec_time desc limit $1`,
          [n],
        );
        return rows;
      }),
  };

  // --profile: node arguments for a product node (a previous run's profiles would be summarised with this one's).
  const profileArgs = (id) => {
    if (!profile) return [];
    rmSync(join(root, 'bench/results/profiles', id), { recursive: true, force: true });
    return ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench/results/profiles', id)}`];
  };

  // ---- variants: set up once, run `reps` times interleaved (A B C … A B C …), torn down at the end --------
  const variants = [];
  const relay = (id, kind, label) => ({
    id, label, repeat: id === 'B2',
    async setup() {
      const port = await freePort();
      const child = forkChild('relay-server.mjs', [kind, String(port)]);
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; !(await fetch(`${url}/metrics`).then((r) => r.ok).catch(() => false)); i++) {
        if (i > 100) throw new Error(`${id} relay did not start`);
        await wait(50);
      }
      const t = await (kind === 'ws' ? wsTransport : sioTransport)(url, cfg.pairs, child.pid);
      const metrics = () => fetch(`${url}/metrics`).then((r) => r.json());
      t.resetMetrics = () => metrics();
      t.readMetrics = async () => [(await metrics()).eventLoopDelayMs];
      return { t, stop: async () => { t.close(); await child.stop(); } };
    },
    async run(ctx) {
      return { phases: await runStandardPhases(ctx.t, cfg) };
    },
  });
  const dbFloor = (id, label, urlFn) => ({
    id, label, repeat: false,
    async setup() {
      const child = forkChild('db-floor.mjs');
      await child.call('open', { databaseUrl: await urlFn() });
      return { child, stop: async () => { await child.call('close').catch(() => undefined); await child.stop(); } };
    },
    async run(ctx) {
      const batched = await ctx.child.call('run', { mode: 'batched', cfg, pairs: cfg.pairs });
      // One INSERT per message shows what group commit buys; informational, so quick mode leaves it out.
      const perRow = cfg.perRow ? await ctx.child.call('run', { mode: 'per-row', cfg, pairs: cfg.pairs, only: ['max'] }) : null;
      return {
        phases: batched.phases,
        rows: batched.rows,
        acked: batched.acked,
        perRow: perRow ? { phases: perRow.phases, rows: perRow.rows, acked: perRow.acked } : undefined,
      };
    },
  });
  const product = (id, label, { db, nodes }) => ({
    id, label, repeat: id !== 'E1pglite',
    async setup() {
      const dbUrl = db === 'pg' ? await newDb(`cb_${id.toLowerCase()}`) : undefined;
      const env = dbUrl ? { DATABASE_URL: dbUrl, ...(nodes === 2 ? { REDIS_URL: redis.url } : {}) } : {};
      const nodeArgs = profileArgs(id);
      const a = await startNode(env, { label: `${id} node A`, nodeArgs });
      const b = nodes === 2 ? await startNode(env, { label: `${id} node B`, nodeArgs }) : a;
      const servers = nodes === 2 ? [a, b] : [a];
      const t = await productTransport({
        constituentUrl: a.url,
        agentUrl: b.url,
        pairs: cfg.pairs,
        serverPids: [...servers.map((s) => s.pid), ...(nodes === 2 ? [redis.pid] : [])],
        metrics: servers.map((s) => s.metrics),
      });
      if (dbUrl) t.dbPids = pgc.pids;
      const ctx = { t, servers, dbUrl, acks: 0 };
      ctx.stop = async () => {
        t.close();
        await wait(300);
        // Rows written must equal acknowledgements (each ack with created: true is one stored message).
        let rows;
        if (dbUrl) rows = await countRows(dbUrl, t.conversationIds);
        for (const s of servers) await s.stop({ keepData: !dbUrl });
        if (!dbUrl) rows = await countPgliteRows(a.dataDir, t.conversationIds);
        ctx.check = { rows, acks: t.ackedCreated };
        // Errors the server logged under load (first few distinct messages), for the report.
        const errs = new Set();
        for (const s of servers)
          for (const line of s.output().split('\n')) {
            if (!/"level":(50|60)/.test(line)) continue;
            try {
              const j = JSON.parse(line);
              const e = j.err ?? {};
              const detail = typeof e === 'string' ? e : [e.type, e.cause?.message ?? e.message?.split('\n').at(-1)].filter(Boolean).join(' ');
              errs.add(`${j.msg}: ${detail}`.slice(0, 300));
            } catch {
              errs.add(line.slice(0, 200));
            }
          }
        if (errs.size) ctx.check.serverErrors = [...errs].slice(0, 5);
        if (profile) {
          const dir = join(root, 'bench/results/profiles', id);
          const { summariseProfile } = await import('./lib/profile.mjs');
          ctx.check.profiles = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => summariseProfile(join(dir, f)));
          if (dbUrl) ctx.check.statements = await statements.top(dbUrl);
        }
      };
      return ctx;
    },
    async run(ctx) {
      if (profile && ctx.dbUrl) await statements.reset(ctx.dbUrl);
      return { phases: await runStandardPhases(ctx.t, cfg) };
    },
  });
  // B1 only informs the framework-overhead ratio: quick mode runs it when asked by name.
  if (want('B1') && (!quick || only?.has('B1'))) variants.push(relay('B1', 'ws', 'B1 bare ws relay'));
  if (want('B2')) variants.push(relay('B2', 'sio', 'B2 bare Socket.IO relay'));
  if (want('B3pg')) variants.push(dbFloor('B3pg', 'B3 bare insert, PostgreSQL', () => newDb('cb_b3')));
  if (want('B3pglite')) variants.push(dbFloor('B3pglite', 'B3 bare insert, PGlite', async () => undefined));
  if (want('E1pglite')) variants.push(product('E1pglite', 'E1 product, 1 node, PGlite', { db: 'pglite', nodes: 1 }));
  if (want('E1pg')) variants.push(product('E1pg', 'E1 product, 1 node, PostgreSQL', { db: 'pg', nodes: 1 }));
  if (want('E2')) variants.push(product('E2', 'E2 product, 2 nodes + Redis, PostgreSQL', { db: 'pg', nodes: 2 }));

  // Set up everything first (so start-up costs stay out of the interleaved runs)…
  const ctxs = new Map();
  for (const v of variants) {
    log(`setting up ${v.label}`);
    ctxs.set(v.id, await v.setup());
    results.variants[v.id] = { label: v.label, reps: [] };
  }
  // …then A B C … A B C …: the first repetition runs every variant, later ones those marked `repeat`.
  // Before each run every server must be quiet: an overloaded variant may still be working off its backlog.
  const allPids = () => [...ctxs.values()].flatMap((c) => [...(c.t?.serverPids ?? []), ...(c.child ? [c.child.pid] : [])]);
  const quiesce = async () => {
    const until = Date.now() + 20_000;
    for (;;) {
      const end = cpuWindow(allPids());
      await wait(300);
      const busy = end().reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
      if (busy < 15) return 0;
      if (Date.now() > until) return busy;
    }
  };
  for (let rep = 0; rep < cfg.reps; rep++) {
    for (const v of variants) {
      if (rep > 0 && !v.repeat) continue;
      if (rep > 0 && overBudget(`${v.id} repetition ${rep + 1}`)) continue;
      const busy = await quiesce();
      if (busy) results.notes.push(`${v.id} repetition ${rep + 1} started while the servers were still busy (${busy} % CPU) after 20 s`);
      log(`${v.label}, repetition ${rep + 1}`);
      const r = await v.run(ctxs.get(v.id));
      results.variants[v.id].reps.push(r);
      const max = r.phases.find((p) => p.key === 'max');
      log(`  max ${max?.msgPerS} msg/s; R1 p99 ${r.phases.find((p) => p.key === 'r1')?.latencyMs.p99} ms; lost ${r.phases.reduce((a, p) => a + p.lost, 0)}`);
    }
  }
  for (const v of variants) {
    const ctx = ctxs.get(v.id);
    await ctx.stop();
    if (ctx.check) results.variants[v.id].check = ctx.check;
  }

  // ---- blocks that need a machine of their own ----------------------------------------------------------
  if (want('M1') && !overBudget('M1')) {
    log(`M1 idle widgets (${cfg.m1})`);
    results.blocks.M1 = await idleWidgets({ n: cfg.m1, newDb, quick, log, nodeArgs: profileArgs('M1') });
  }
  if (want('F1') && !overBudget('F1')) {
    log('F1 supervisor fan-out');
    results.blocks.F1 = await supervisorFanout({ newDb, dbPids: pgc.pids, seconds: cfg.f1Seconds, log, statements: profile ? statements : undefined, nodeArgs: profileArgs('F1') });
  }
  if (want('L1') && !overBudget('L1')) {
    log('L1 console first screen');
    results.blocks.L1 = await consoleFirstScreen({ adminUrl: pgc.url(), browser: cfg.browser, log });
  }
  await admin?.end();

  // ---- verdicts ----------------------------------------------------------------------------------------
  for (const [id, v] of Object.entries(results.variants)) {
    const lost = v.reps.flatMap((r) => r.phases).reduce((a, p) => a + p.lost, 0);
    if (lost) results.failures.push(`${id}: ${lost} messages lost`);
    if (v.check && v.check.rows !== v.check.acks) results.failures.push(`${id}: rows written ${v.check.rows} ≠ acks ${v.check.acks}`);
    for (const r of v.reps) {
      if (r.rows !== undefined && r.rows !== r.acked) results.failures.push(`${id}: rows ${r.rows} ≠ acks ${r.acked}`);
      if (r.perRow && r.perRow.rows !== r.perRow.acked) results.failures.push(`${id} per-row: rows ${r.perRow.rows} ≠ acks ${r.perRow.acked}`);
    }
  }
  if (results.blocks.F1?.missed) results.failures.push(`F1: ${results.blocks.F1.missed} queue events never reached a dashboard`);
  results.ratios = computeRatios(results);
  for (const g of results.ratios.filter((x) => x.gate && x.pass === false)) results.failures.push(`ratio gate: ${g.name} = ${g.value} (gate ${g.gate})`);
  results.meta.seconds = Math.round((Date.now() - started) / 1000);

  writeOut();
  return results.failures.length ? 1 : 0;
}

function writeOut() {
  results.meta.seconds = Math.round((Date.now() - started) / 1000);
  results.ratios ??= computeRatios(results);
  const md = renderMarkdown(results);
  const dir = join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.meta.date.replace(/[:.]/g, '-');
  writeFileSync(join(dir, `${stamp}-${cfg.mode}.json`), JSON.stringify(results, null, 2));
  writeFileSync(join(dir, 'latest.md'), md);
  console.log(md);
  log(`results: bench/results/${stamp}-${cfg.mode}.json and bench/results/latest.md`);
}

async function countPgliteRows(dataDir, ids) {
  const { openDatabase, rowsOf } = await import(join(root, 'server/dist/db/client.js'));
  const { createRequire } = await import('node:module');
  const { sql } = createRequire(join(root, 'server/package.json'))('drizzle-orm');
  const database = await openDatabase({ dataDir });
  try {
    const res = await database.db.execute(
      sql`select count(*)::int as n from messages where author_kind = 'constituent' and conversation_id in (${sql.join(ids.map((i) => sql`${i}::uuid`), sql`, `)})`,
    );
    return rowsOf(res)[0].n;
  } finally {
    await database.close();
  }
}

let code = 2;
try {
  code = await main();
} catch (err) {
  console.error(err?.stack ?? err);
  code = 2;
} finally {
  await cleanupAll();
}
process.exit(code);
