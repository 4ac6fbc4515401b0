// M1: idle, authenticated widgets held by one CaseBridge node (PostgreSQL), against the same number of bare
// Socket.IO connections (one room each): connections, connect rate, RSS and heap per connection, idle CPU.
import { execSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { startNode, forkChild, freePort, procRssKb, cpuWindow, wait, root, SESSION_SECRET } from './infra.mjs';
import { pool, sioConnect, widgetSession, ipOf, PROTOCOL_VERSION } from './transports.mjs';

export async function idleWidgets({ n, newDb, quick, log, nodeArgs = [] }) {
  const nofile = Number(execSync('ulimit -n', { encoding: 'utf8', shell: '/bin/bash' }).trim()) || 1024;
  // The generator holds every client socket in this one process; keep room for everything else it has open.
  const cap = Math.max(100, nofile - 1500);
  const asked = n;
  n = Math.min(n, cap);
  // Idle CPU is a steady state: measured after the connect storm has settled (its garbage collected, the
  // per-address rate-limit entries expiring) and, in full mode, over one whole heartbeat period (25 s), so
  // every socket's ping and the collections it causes are in the window once. Quick mode only glimpses it.
  const settleS = quick ? 2 : 5;
  const idleS = quick ? 3 : 25;
  const out = { asked, cap, nofile, n, settleS, idleS };

  // --- the product ---------------------------------------------------------------------------------------
  const dbUrl = await newDb('cb_m1');
  const node = await startNode({ DATABASE_URL: dbUrl }, { label: 'M1 node', nodeArgs });
  node.dbUrl = dbUrl;
  try {
    // Sessions first, so the socket phase measures connections only. A sample through the API gives the
    // session rate; the rest are written in one SQL statement and signed with the product's own token code.
    const dbUrl = node.dbUrl;
    const sample = Math.min(500, n);
    const t0 = performance.now();
    const tokens = await pool(Array.from({ length: sample }, (_, i) => i), 32, async (i) => (await widgetSession(node.url, 100_000 + i)).token);
    const sessionsPerS = Math.round(sample / ((performance.now() - t0) / 1000));
    const { WidgetTokens } = await import(join(root, 'server/dist/modules/widget/widget-token.js'));
    const signer = new WidgetTokens(SESSION_SECRET);
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    const { rows } = await db.query(
      `with a as (select id from agencies where slug = 'springfield'),
            c as (insert into constituents (agency_id) select a.id from a, generate_series(1, $1) returning id, agency_id)
       insert into widget_sessions (agency_id, constituent_id) select agency_id, id from c returning id`,
      [n - sample],
    );
    await db.end();
    for (const r of rows) tokens.push(signer.issue(r.id));
    log(`  M1: ${n} widget sessions (API ${sessionsPerS}/s for the first ${sample})`);
    await wait(1500);
    const before = await node.metrics();
    const rss0 = procRssKb(node.pid);
    const t1 = performance.now();
    const sockets = await pool(tokens, 100, (token, i) =>
      sioConnect(node.url, { auth: { protocolVersion: PROTOCOL_VERSION, token }, extraHeaders: { 'x-forwarded-for': ipOf(100_000 + i) } }).catch(() => null),
    );
    const connectS = (performance.now() - t1) / 1000;
    const connected = sockets.filter(Boolean).length;
    await wait(settleS * 1000);
    const cpu = cpuWindow([node.pid]);
    await wait(idleS * 1000);
    const [idleCpuPct] = cpu();
    const after = await node.metrics();
    const rss1 = procRssKb(node.pid);
    out.product = {
      connected,
      sessionsPerS,
      connectPerS: Math.round(connected / connectS),
      rssKbPerConn: Math.round(((rss1 - rss0) / connected) * 10) / 10,
      heapKbPerConn: Math.round(((after.memory.heapUsed - before.memory.heapUsed) / 1024 / connected) * 10) / 10,
      idleCpuPct,
      rssAfterMb: Math.round(rss1 / 102.4) / 10,
      loopP99Ms: after.eventLoopDelayMs.p99,
    };
    log(`  M1 product: ${JSON.stringify(out.product)}`);
    for (const s of sockets) s?.close();
  } finally {
    await node.stop();
  }
  await wait(500);

  // --- bare Socket.IO --------------------------------------------------------------------------------------
  const port = await freePort();
  const child = forkChild('relay-server.mjs', ['sio', String(port)]);
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; !(await fetch(`${url}/metrics`).then((r) => r.ok).catch(() => false)); i++) {
      if (i > 100) throw new Error('bare Socket.IO server did not start');
      await wait(50);
    }
    await wait(500);
    const before = await fetch(`${url}/metrics`).then((r) => r.json());
    const rss0 = procRssKb(child.pid);
    const t1 = performance.now();
    const sockets = await pool(Array.from({ length: n }, (_, i) => i), 100, async (i) => {
      const s = await sioConnect(url).catch(() => null);
      await s?.emitWithAck('join', `room-${i}`);
      return s;
    });
    const connectS = (performance.now() - t1) / 1000;
    const connected = sockets.filter(Boolean).length;
    await wait(settleS * 1000);
    const cpu = cpuWindow([child.pid]);
    await wait(idleS * 1000);
    const [idleCpuPct] = cpu();
    const after = await fetch(`${url}/metrics`).then((r) => r.json());
    const rss1 = procRssKb(child.pid);
    out.bare = {
      connected,
      connectPerS: Math.round(connected / connectS),
      rssKbPerConn: Math.round(((rss1 - rss0) / connected) * 10) / 10,
      heapKbPerConn: Math.round(((after.memory.heapUsed - before.memory.heapUsed) / 1024 / connected) * 10) / 10,
      idleCpuPct,
      rssAfterMb: Math.round(rss1 / 102.4) / 10,
    };
    log(`  M1 bare: ${JSON.stringify(out.bare)}`);
    for (const s of sockets) s?.close();
  } finally {
    await child.stop();
  }
  out.note = 'Per-connection figures are (after − before) ÷ connections, without forcing a GC.';
  return out;
}
