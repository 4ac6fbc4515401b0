/**
 * Shares one computation among callers asking for the same key at about the same time, without ever answering
 * with something computed before the caller asked: a caller arriving while a run is in flight waits for the
 * next run (which starts when that one ends), together with everyone else who arrived meanwhile. So at most
 * one run per key is in flight and one is pending, however many callers there are.
 */
export class Coalescer<V> {
  private readonly running = new Map<string, Promise<V>>();
  private readonly next = new Map<string, Promise<V>>();

  get(key: string, compute: () => Promise<V>): Promise<V> {
    const pending = this.next.get(key);
    if (pending) return pending;
    const current = this.running.get(key);
    if (!current) return this.start(key, compute);
    const queued = current
      .catch(() => undefined)
      .then(() => {
        this.next.delete(key);
        return this.start(key, compute);
      });
    this.next.set(key, queued);
    return queued;
  }

  private start(key: string, compute: () => Promise<V>): Promise<V> {
    const run = compute().finally(() => {
      if (this.running.get(key) === run) this.running.delete(key);
    });
    this.running.set(key, run);
    return run;
  }
}
