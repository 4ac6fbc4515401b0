import type { Logger } from '../../lib/logger.js';
import type { SlaService } from '../sla/sla.service.js';
import type { CaseService } from './case.service.js';

/**
 * The periodic work on cases: SLA warnings and breaches, closing resolved cases whose reopen window passed, and
 * routing any queue a missed trigger left waiting.
 * Every node runs it; the database claims each alert and each close once, and nothing lives only in memory, so
 * a restart loses nothing.
 */
export class CaseTimers {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly d: {
      sla: SlaService;
      cases: CaseService;
      /** Routes queues that a missed trigger left waiting (a node restarted, an agent came back). */
      sweepQueues: () => Promise<number>;
      /** Sends texts a stopped node left pending. */
      sweepTexts?: () => Promise<number>;
      /** Runs a pass only on the node holding the timers' lock (several nodes: exactly one at a time). */
      exclusive?: <T>(fn: () => Promise<T>) => Promise<T | undefined>;
      logger: Logger;
      intervalMs: number;
    },
  ) {}

  start(): void {
    if (this.timer || this.d.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.tick(), this.d.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass; a pass still running is not overlapped. */
  async tick(): Promise<{ alerts: number; closed: number; routed: number; texts: number }> {
    if (this.running) await this.running;
    const idle = { alerts: 0, closed: 0, routed: 0, texts: 0 };
    const work = async () => ({
      alerts: await this.d.sla.tick(),
      closed: await this.d.cases.closeExpired(),
      routed: await this.d.sweepQueues(),
      texts: (await this.d.sweepTexts?.()) ?? 0,
    });
    const pass = (async () => {
      try {
        // Each job also claims what it handles once, so a lock lost mid-pass (a database restart) stays safe.
        return (this.d.exclusive ? await this.d.exclusive(work) : await work()) ?? idle;
      } catch (err) {
        this.d.logger.error({ err }, 'case timers failed; retrying next tick');
        return idle;
      }
    })();
    this.running = pass;
    try {
      return await pass;
    } finally {
      if (this.running === pass) this.running = undefined;
    }
  }
}
