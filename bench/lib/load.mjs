// The one load model every relay-shaped variant (B1, B2, B3, E1, E2) runs through, so they are compared with
// the same payloads and offered load (PERFORMANCE.md §6.2): warm-up → open loop R1 → open loop R2 → closed loop.
//
// A transport gives: pairs (how many sender/receiver pairs it has), send(pair, id, payload, onAck) and calls
// `delivered(id)` when the receiving side (the agent) gets message `id`. Latency is sender→receiver in this one
// process (one clock). A message is complete when it is both acknowledged and delivered.
import { randomUUID } from 'node:crypto';
import { Samples, generatorGuard } from './stats.mjs';
import { cpuWindow, machineWindow, procRssKb, wait } from './infra.mjs';

const BODY = 'Hello, I would like to ask about the status of my permit application for the house on Elm St. Thanks';

export function makePayload(conversationId, clientMessageId) {
  // ≈ 200 bytes of JSON, the shape of the product's message:send input.
  return { conversationId, clientMessageId, body: BODY, visibility: 'public' };
}

export class Runner {
  constructor(transport) {
    this.t = transport;
    this.inflight = new Map(); // id -> record
    this.phase = null;
    transport.onDeliver = (id) => this.delivered(id);
  }

  delivered(id) {
    const r = this.inflight.get(id);
    if (!r || r.deliveredAt) {
      if (this.phase) this.phase.unknownDeliveries++;
      return;
    }
    r.deliveredAt = performance.now();
    r.phase.lat.add(r.deliveredAt - r.t0);
    r.phase.delivered++;
    if (r.deliveredAt <= r.phase.sendEnd) r.phase.deliveredInWindow++;
    else if (r.deliveredAt > r.phase.sendEnd + 1000) r.phase.lateDelivered++;
    this.maybeDone(r);
  }

  maybeDone(r) {
    if (!r.deliveredAt || !r.ackAt) return;
    this.inflight.delete(r.id);
    if (r.ok) r.phase.complete++;
    r.onComplete?.();
  }

  send(pair, ph, onComplete) {
    const id = randomUUID();
    const r = { id, phase: ph, t0: performance.now(), deliveredAt: 0, ackAt: 0, onComplete };
    this.inflight.set(id, r);
    ph.sent++;
    this.t.send(pair, id, (ok, code) => {
      if (r.ackAt) return;
      r.ackAt = performance.now();
      if (ok) {
        r.ok = true;
        ph.acked++;
        ph.ackLat.add(r.ackAt - r.t0);
      } else {
        ph.errors[code ?? 'ERROR'] = (ph.errors[code ?? 'ERROR'] ?? 0) + 1;
        // A refused message is never delivered: do not count it as lost, count it as an error.
        if (!r.deliveredAt) {
          r.deliveredAt = r.ackAt;
          ph.refused++;
        }
      }
      this.maybeDone(r);
    });
  }

  /**
   * spec: { name, mode: 'open', rate, seconds } or { name, mode: 'closed', pairs, depth, seconds }.
   * Returns the phase's numbers, including server CPU/RSS/event-loop delay when the transport exposes them.
   */
  async run(spec, { drainMs = 10_000 } = {}) {
    const ph = {
      sent: 0, acked: 0, delivered: 0, deliveredInWindow: 0, lateDelivered: 0, complete: 0, refused: 0, unknownDeliveries: 0,
      errors: {}, lat: new Samples(), ackLat: new Samples(), sendEnd: Infinity,
    };
    this.phase = ph;
    const pids = this.t.serverPids ?? [];
    await this.t.resetMetrics?.();
    const guard = generatorGuard();
    const cpu = cpuWindow(pids);
    const machine = machineWindow();
    const dbPids = this.t.dbPids?.() ?? [];
    const dbCpu = cpuWindow(dbPids);
    const t0 = performance.now();
    const endAt = t0 + spec.seconds * 1000;
    let offered = 0;
    if (spec.mode === 'open') {
      const pairs = this.t.pairs;
      let n = 0;
      await new Promise((resolve) => {
        const tick = () => {
          const now = performance.now();
          if (now >= endAt) return resolve();
          const due = Math.floor(((now - t0) / 1000) * spec.rate);
          // Never more than 50 ms of catch-up at once: a stalled generator must show up as under-offered.
          let burst = Math.min(due - n, Math.ceil(spec.rate / 20));
          // A server that cannot keep up is not buried under an ever-growing backlog (the phase stays bounded):
          // at most half a second of the rate outstanding; what is not sent shows as under-offered.
          const cap = Math.max(200, spec.rate / 2);
          while (burst-- > 0) {
            if (this.inflight.size >= cap) {
              n = due;
              ph.skipped = (ph.skipped ?? 0) + 1;
              break;
            }
            this.send(n++ % pairs, ph);
          }
          setTimeout(tick, 1);
        };
        tick();
      });
      offered = Math.round(spec.rate * spec.seconds);
    } else {
      const pairs = Math.min(spec.pairs, this.t.pairs);
      let stop = false;
      const loop = (p) => {
        if (stop) return;
        this.send(p, ph, () => loop(p));
      };
      for (let p = 0; p < pairs; p++) for (let d = 0; d < spec.depth; d++) loop(p);
      await wait(spec.seconds * 1000);
      stop = true;
    }
    const sendEnd = performance.now();
    ph.sendEnd = sendEnd;
    const windowS = (sendEnd - t0) / 1000;
    const cpuPct = cpu();
    const machineCpuPct = machine();
    const dbCpuPct = dbPids.length ? Math.round(dbCpu().reduce((a, b) => a + b, 0) * 10) / 10 : null;
    const gen = guard();
    const server = await this.t.readMetrics?.().catch(() => null);
    // Drain: wait for every message of this phase to be delivered and acknowledged. An overloaded server
    // delivers late: those count as late (delivered more than 1 s after sending stopped), not lost; lost is what
    // never arrived within drainMs. The next phase starts only after this one's backlog is gone.
    const drainEnd = performance.now() + drainMs;
    while (performance.now() < drainEnd && [...this.inflight.values()].some((r) => r.phase === ph)) await wait(20);
    const late = ph.lateDelivered;
    let lost = 0;
    let unacked = 0;
    for (const [id, r] of this.inflight) {
      if (r.phase !== ph) continue;
      if (!r.deliveredAt) lost++;
      if (!r.ackAt) unacked++;
      this.inflight.delete(id);
    }
    this.phase = null;
    const achieved = spec.mode === 'open' ? ph.sent / windowS : ph.complete / windowS;
    const res = {
      phase: spec.name,
      mode: spec.mode,
      offered: spec.mode === 'open' ? spec.rate : null,
      seconds: Math.round(windowS * 100) / 100,
      sent: ph.sent,
      acked: ph.acked,
      delivered: ph.delivered,
      lost,
      late,
      unacked,
      refused: ph.refused,
      errors: ph.errors,
      msgPerS: Math.round(spec.mode === 'open' ? ph.deliveredInWindow / windowS : achieved),
      latencyMs: ph.lat.summary(),
      ackLatencyMs: ph.ackLat.summary(),
      serverCpuPct: cpuPct,
      dbCpuPct,
      machineCpuPct,
      serverRssMb: pids.map((p) => Math.round(procRssKb(p) / 102.4) / 10),
      serverLoopDelay: server,
      generator: gen,
    };
    // PERFORMANCE.md §6.1.5: a generator that is busy or could not offer the rate makes the phase "saturated".
    const underOffered = spec.mode === 'open' && ph.sent < 0.99 * offered;
    res.saturated = underOffered
      ? ph.skipped
        ? `server backlog: only ${Math.round((ph.sent / offered) * 100)} % offered`
        : 'generator under-offered'
      : gen.cpuPct > 90
        ? 'generator CPU > 90 %'
        : false;
    return res;
  }
}

/** warm-up, R1, R2, closed loop (§6.2). */
export async function runStandardPhases(transport, cfg, { only } = {}) {
  const r = new Runner(transport);
  const out = [];
  const phases = [
    { name: 'warmup', mode: 'open', rate: cfg.r1, seconds: cfg.warmup },
    { name: `open ${cfg.r1}/s`, key: 'r1', mode: 'open', rate: cfg.r1, seconds: cfg.phase },
    { name: `open ${cfg.r2}/s`, key: 'r2', mode: 'open', rate: cfg.r2, seconds: cfg.phase },
    { name: `closed ${cfg.closedPairs}×${cfg.depth}`, key: 'max', mode: 'closed', pairs: cfg.closedPairs, depth: cfg.depth, seconds: cfg.phase },
  ].filter((p) => !only || p.name === 'warmup' || only.includes(p.key));
  for (const p of phases) {
    const res = await r.run(p, { drainMs: (cfg.drain ?? 8) * 1000 });
    res.key = p.key ?? 'warmup';
    out.push(res);
    await wait(200);
  }
  return out;
}
