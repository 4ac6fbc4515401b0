// Small statistics helpers: a growable sample array with sorted percentiles, and the generator's own guard
// (its CPU and event-loop delay), so a phase the generator could not drive is marked "saturated".
import { monitorEventLoopDelay } from 'node:perf_hooks';

export class Samples {
  constructor(initial = 1 << 14) {
    this.a = new Float64Array(initial);
    this.n = 0;
  }
  add(v) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  summary() {
    if (!this.n) return { n: 0 };
    const s = this.a.slice(0, this.n).sort();
    const q = (p) => s[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))];
    const r = (x) => Math.round(x * 1000) / 1000;
    return { n: this.n, p50: r(q(50)), p90: r(q(90)), p99: r(q(99)), p999: r(q(99.9)), max: r(s[this.n - 1]) };
  }
}

/** The generator's CPU (% of one core) and event-loop delay over a window. */
export function generatorGuard() {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const c = process.cpuUsage(c0);
    const dt = (performance.now() - t0) * 1000;
    h.disable();
    return {
      cpuPct: Math.round(((c.user + c.system) / dt) * 1000) / 10,
      // The histogram holds whole timer intervals: minus the 5 ms resolution is the delay.
      loopDelayP99Ms: Math.max(0, Math.round((h.percentile(99) - 5e6) / 1e4) / 100),
      loopDelayMaxMs: Math.max(0, Math.round((h.max - 5e6) / 1e4) / 100),
    };
  };
}

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
