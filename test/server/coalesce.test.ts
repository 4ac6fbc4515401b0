import { describe, expect, it } from '@jest/globals';
import { Coalescer } from '../../server/src/lib/coalesce.js';

// Dashboards share snapshots through this: callers share runs, but nobody gets a run that began before they asked.
describe('Coalescer', () => {
  it('shares runs among callers who arrive together and never answers with a run that began before the caller asked', async () => {
    const c = new Coalescer<number>();
    let runs = 0;
    let version = 0;
    const gates: (() => void)[] = [];
    const compute = () => {
      const seen = ++runs;
      const v = version;
      return new Promise<number>((resolve) => gates.push(() => resolve(v * 100 + seen)));
    };
    const a = c.get('k', compute);
    version = 1; // the data changes after the first run started reading
    const b = c.get('k', compute);
    const d = c.get('k', compute);
    expect(runs).toBe(1);
    gates.shift()!();
    await expect(a).resolves.toBe(1);
    // b and d asked after the change: they share the second run, which sees it.
    await new Promise((r) => setImmediate(r));
    expect(runs).toBe(2);
    gates.shift()!();
    await expect(b).resolves.toBe(102);
    await expect(d).resolves.toBe(102);
    // Another key never waits for this one.
    const other = c.get('other', compute);
    expect(runs).toBe(3);
    gates.shift()!();
    await expect(other).resolves.toBe(103);
  });

  it('a failed run fails its callers only; the next caller runs again', async () => {
    const c = new Coalescer<string>();
    await expect(c.get('k', () => Promise.reject(new Error('database down')))).rejects.toThrow('database down');
    await expect(c.get('k', async () => 'fine')).resolves.toBe('fine');
  });
});
