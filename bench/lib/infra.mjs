// Processes the benchmark starts and always stops: a private Redis, a private PostgreSQL cluster (initdb in a
// temp dir), CaseBridge nodes (server/dist/index.js) and helper children. Loopback only. Adapted from
// test/support/cluster.ts and test/support/process.ts (copied, so bench/ does not import test files).
import { fork, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const wait = (ms) => new Promise((r) => setTimeout(r, ms));
export const DEMO_PASSWORD = 'bench-password-123';
export const SESSION_SECRET = 'bench-secret-bench-secret-bench-secret-42';

// ---------------------------------------------------------------------------------------------------------
// Cleanup registry: everything started registers a stop function; run on exit, error, SIGINT and SIGTERM.
const cleanups = [];
export function onCleanup(fn) {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}
let cleaning;
export function cleanupAll() {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop();
      try {
        await Promise.race([fn(), wait(15_000)]);
      } catch {
        /* best effort */
      }
    }
  })();
  return cleaning;
}
/** The orchestrator (not its children) stops everything on Ctrl-C or SIGTERM. */
export function installSignalHandlers() {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      process.stderr.write(`\n${sig}: stopping everything the benchmark started…\n`);
      await cleanupAll();
      process.exit(130);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(100);
  }
}

/** The build the benchmark runs: fail clearly when it is missing, warn when sources are newer. */
export function checkBuild({ needWeb = false } = {}) {
  const entry = join(root, 'server/dist/index.js');
  if (!existsSync(entry)) throw new Error('server/dist/index.js is missing: run `npm run build` first.');
  if (needWeb && !existsSync(join(root, 'web/build/handler.js'))) throw new Error('web/build is missing: run `npm run build` first.');
  const newest = (dir) => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  const src = newest(join(root, 'server/src'));
  const dist = newest(join(root, 'server/dist'));
  return src > dist ? 'server/src is newer than server/dist: the benchmark runs the last build (`npm run build` to refresh).' : null;
}

// ---------------------------------------------------------------------------------------------------------
/** A Redis server of our own on a free port; nothing kept on disk. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  onCleanup(stop);
  await until('redis to listen', () => portOpen(port));
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid, stop };
}

function pgBin(name) {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  return join('/usr/lib/postgresql', versions.at(-1), 'bin', name);
}
function runPg(args) {
  const asRoot = process.getuid?.() === 0;
  const cmd = asRoot ? 'runuser' : args[0];
  const argv = asRoot ? ['-u', 'postgres', '--', ...args] : args.slice(1);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/**
 * A throw-away PostgreSQL cluster (trust auth, loopback, random port). Durable commits as shipped:
 * fsync and synchronous_commit stay on (the fault tests turn fsync off; a benchmark of durable writes must not).
 */
export async function startPostgres() {
  if (!existsSync('/usr/lib/postgresql')) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'cb-bench-pg-'));
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  if (process.getuid?.() === 0) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  runPg([pgBin('initdb'), '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  runPg([
    pgBin('pg_ctl'), '-D', join(dir, 'data'), '-l', join(dir, 'log'), '-w', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c shared_preload_libraries=pg_stat_statements`,
    'start',
  ]);
  const stop = async () => {
    try {
      runPg([pgBin('pg_ctl'), '-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
    } catch {
      /* already stopped */
    }
  };
  onCleanup(stop);
  await until('postgres to listen', () => portOpen(port));
  const version = spawnSync(pgBin('postgres'), ['--version'], { encoding: 'utf8' }).stdout.trim();
  const url = (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`;
  /** The postmaster and its backends (their CPU is the database's share). */
  const pids = () => {
    try {
      const main = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      const out = [main];
      for (const e of readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        try {
          const st = readFileSync(`/proc/${e}/stat`, 'utf8');
          if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === main) out.push(Number(e));
        } catch {
          /* gone */
        }
      }
      return out;
    } catch {
      return [];
    }
  };
  return { port, url, version, stop, dir, pids };
}

// ---------------------------------------------------------------------------------------------------------
/** A CaseBridge node as its own process, the built entry point `npm start` runs. */
export async function startNode(env = {}, { nodeArgs = [], label = 'node' } = {}) {
  const port = await freePort();
  const dataDir = env.DATABASE_URL ? undefined : mkdtempSync(join(tmpdir(), 'cb-bench-pglite-'));
  const child = spawn(process.execPath, [...nodeArgs, 'server/dist/index.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      DEMO_MODE: 'true',
      CASEBRIDGE_DEMO_PASSWORD: DEMO_PASSWORD,
      SESSION_SECRET,
      LOG_LEVEL: 'warn',
      TRUST_PROXY: 'true',
      // Benchmark knobs (server/src/config.ts): no rate limit throttles the load generator; metrics endpoint.
      RATE_LIMIT_SCALE: '100000',
      BENCH_METRICS: 'true',
      ...(dataDir ? { DATA_DIR: dataDir } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d) => {
    out += d;
    if (out.length > 20_000) out = out.slice(-10_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, wait(12_000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const unregister = onCleanup(stop);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${label} exited early:\n${out}`);
    const ok = await fetch(`${url}/api/health`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${label} not healthy after 90 s:\n${out}`);
    }
    await wait(150);
  }
  return {
    label,
    port,
    url,
    pid: child.pid,
    dataDir,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    /** Stops it; with keepData the PGlite directory stays for a row count (the caller removes it). */
    stop: async ({ keepData = false } = {}) => {
      unregister();
      if (keepData && dataDir) {
        const d = dataDir;
        onCleanup(async () => rmSync(d, { recursive: true, force: true }));
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await Promise.race([exited, wait(12_000)]);
        }
        return;
      }
      await stop();
    },
    /** Server-side metrics since the previous call (BENCH_METRICS endpoint). */
    metrics: () => fetch(`${url}/api/health/metrics`).then((r) => r.json()),
  };
}

/** A helper script of ours (bench/lib/*.mjs) as a child process with IPC. */
export function forkChild(script, args = [], { execArgv = [] } = {}) {
  const child = fork(join(root, 'bench/lib', script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, wait(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  const unregister = onCleanup(stop);
  let seq = 0;
  const pending = new Map();
  child.on('message', (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  child.once('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`${script} exited (${code})`));
    pending.clear();
  });
  return {
    pid: child.pid,
    call: (cmd, data = {}) =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, ...data });
      }),
    stop: async () => {
      unregister();
      await stop();
    },
  };
}

/** The child side of forkChild: answers {id, cmd} messages with handlers[cmd](msg). */
export function serveParent(handlers) {
  process.on('message', async (m) => {
    try {
      const result = await handlers[m.cmd](m);
      process.send({ id: m.id, result });
    } catch (err) {
      process.send({ id: m.id, error: err?.stack ?? String(err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------------------
// Per-process resource use from /proc: CPU (all threads, e.g. PGlite's worker), RSS.
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime
  } catch {
    return NaN;
  }
}
export function procRssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
/** Starts a CPU window over some processes; end() gives % of one core for each. */
export function cpuWindow(pids) {
  const t0 = performance.now();
  const c0 = pids.map(procCpuSeconds);
  return () => {
    const dt = (performance.now() - t0) / 1000;
    return pids.map((pid, i) => Math.round(((procCpuSeconds(pid) - c0[i]) / dt) * 1000) / 10);
  };
}

/** The whole machine's busy CPU over a window, in % of one core (2 cores = 200 %): shows load we did not make. */
export function machineWindow() {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { busy: f.reduce((a, b) => a + b, 0) - idle };
  };
  const t0 = performance.now();
  const a = read();
  return () => Math.round(((read().busy - a.busy) / TICK / ((performance.now() - t0) / 1000)) * 1000) / 10;
}
