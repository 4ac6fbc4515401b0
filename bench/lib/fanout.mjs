// F1: 20 supervisor dashboards while 200 queue events per second happen (new widget chats). Each dashboard
// behaves like the console's (web/src/routes/console/(app)/dashboard/+page.svelte): an event schedules a fresh
// GET /api/dashboard, at most one per 500 ms. Lag = from the event's cause (the chat being started) until a
// dashboard holds a snapshot fetched after it heard the event.
import { startNode, cpuWindow, machineWindow, wait } from './infra.mjs';
import { Samples } from './stats.mjs';
import { api, pool, sioConnect, staffLogin, widgetSession, ipOf, PROTOCOL_VERSION } from './transports.mjs';

const EVENTS = ['conversation:created', 'conversation:updated', 'presence:changed', 'case:updated', 'sla:alert'];

export async function supervisorFanout({ newDb, dbPids, seconds, log, dashboards = 20, rate = 200, statements, nodeArgs = [] }) {
  const dbUrl = await newDb('cb_f1');
  const node = await startNode({ DATABASE_URL: dbUrl }, { label: 'F1 node', nodeArgs });
  try {
    const boards = [];
    for (let i = 0; i < dashboards; i++) {
      const s = await staffLogin(node.url, 'supervisor@demo.gov');
      const socket = await sioConnect(node.url, { auth: { protocolVersion: PROTOCOL_VERSION }, extraHeaders: { cookie: s.cookie } });
      const b = { s, socket, heard: new Map(), fetches: [], pending: null, lastFetch: 0, inflight: false };
      const load = async () => {
        b.lastFetch = Date.now();
        const f = { start: performance.now(), end: 0 };
        b.fetches.push(f);
        await api(node.url, '/api/dashboard', { cookie: s.cookie }).catch(() => undefined);
        f.end = performance.now();
      };
      const soon = () => {
        if (b.pending) return;
        const waitMs = Math.max(0, 500 - (Date.now() - b.lastFetch));
        b.pending = setTimeout(() => {
          b.pending = null;
          void load();
        }, waitMs);
      };
      socket.on('conversation:created', (c) => {
        if (!b.heard.has(c.id)) b.heard.set(c.id, performance.now());
      });
      for (const e of EVENTS) socket.on(e, soon);
      await load();
      boards.push(b);
    }
    const total = Math.round(rate * seconds);
    const tokens = await pool(Array.from({ length: total }, (_, i) => i), 16, async (i) => (await widgetSession(node.url, 200_000 + i)).token);
    log(`  F1: ${dashboards} dashboards, ${total} widget sessions ready`);
    for (const b of boards) b.fetches.length = 0;
    await node.metrics();
    await statements?.reset(dbUrl);
    const cpu = cpuWindow([node.pid]);
    const dbCpu = dbPids ? cpuWindow(dbPids()) : undefined;
    const generatorCpu = cpuWindow([process.pid]);
    const machine = machineWindow();
    const started = new Map(); // conversation id -> t0
    const snap = new Samples();
    const startMs = new Samples();
    let sent = 0;
    let failed = 0;
    const t0 = performance.now();
    const inflight = new Set();
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (now - t0 >= seconds * 1000) return resolve();
        const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate));
        while (sent < due) {
          const i = sent++;
          const at = performance.now();
          const p = api(node.url, '/api/widget/conversations', {
            method: 'POST',
            token: tokens[i],
            ip: ipOf(200_000 + i),
            body: { name: `Queue resident ${i}`, language: 'en' },
          })
            .then(({ json }) => {
              started.set(json.conversation.id, at);
              startMs.add(performance.now() - at);
            })
            .catch(() => failed++)
            .finally(() => inflight.delete(p));
          inflight.add(p);
        }
        setTimeout(tick, 2);
      };
      tick();
    });
    const windowS = (performance.now() - t0) / 1000;
    const [serverCpuPct] = cpu();
    const dbCpuPct = dbCpu ? Math.round(dbCpu().reduce((a, b) => a + b, 0) * 10) / 10 : undefined;
    const [generatorCpuPct] = generatorCpu();
    const machineCpuPct = machine();
    const m = await node.metrics();
    await Promise.all(inflight);
    // The last coalesced refreshes: until every dashboard is idle (bounded).
    const idleBy = performance.now() + 30_000;
    await wait(600);
    while (performance.now() < idleBy && boards.some((b) => b.pending || b.fetches.some((f) => !f.end))) await wait(50);
    const lag = new Samples();
    let missed = 0;
    let updates = 0;
    for (const b of boards) {
      const fetches = b.fetches.filter((f) => f.end);
      updates += fetches.filter((f) => f.start - t0 <= windowS * 1000).length;
      for (const f of fetches) snap.add(f.end - f.start);
      for (const [id, at] of started) {
        const heard = b.heard.get(id);
        if (heard === undefined) {
          missed++;
          continue;
        }
        const f = fetches.find((x) => x.start >= heard);
        if (f) lag.add(f.end - at);
        else missed++;
      }
      clearTimeout(b.pending);
      b.socket.close();
    }
    return {
      ...(statements ? { statements: await statements.top(dbUrl, 40) } : {}),
      dashboards,
      seconds: Math.round(windowS * 10) / 10,
      offeredEventsPerS: rate,
      achievedEventsPerS: Math.round(started.size / windowS),
      createFailures: failed,
      lagMs: lag.summary(),
      missed,
      // How long starting a chat took (the lag includes it: a dashboard cannot show a chat before it exists).
      chatStartMs: startMs.summary(),
      updatesPerSecondPerDashboard: Math.round((updates / dashboards / windowS) * 100) / 100,
      snapshotMs: snap.summary(),
      serverCpuPct,
      dbCpuPct,
      generatorCpuPct,
      machineCpuPct,
      serverLoopP99Ms: m.eventLoopDelayMs.p99,
    };
  } finally {
    await node.stop();
  }
}
