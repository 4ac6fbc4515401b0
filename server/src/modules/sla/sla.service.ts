import type { Priority, SlaClock } from '@casebridge/shared';
import type { Db, Tx } from '../../db/client.js';
import { addBusinessMinutes, businessMinutesBetween, type BusinessCalendar } from '../../lib/business-time.js';
import { toIso } from '../../lib/time.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { CaseTypeRow } from '../case-types/case-type.repository.js';
import type { SlaRepository, SlaRow, Metric } from './sla.repository.js';

export interface SlaDeps {
  db: Db;
  slas: SlaRepository;
  agencies: Pick<AgencyRepository, 'findById'>;
  notifier: Notifier;
  /** One timeline write per alert; bound to the case repository. */
  addEvent: (caseId: string, kind: string, data: Record<string, unknown>) => Promise<void>;
  now: () => Date;
}

/** The share of a target after which the assignee and supervisors are warned. */
const WARN_SHARE = 0.75;

/**
 * SLA clocks on business time: first response and resolution, per case type and priority. Clocks pause while
 * the case waits for the constituent; warnings and breaches are claimed by one conditional UPDATE, so they fire
 * once across nodes and restarts.
 */
export class SlaService {
  constructor(private readonly d: SlaDeps) {}

  async calendar(agencyId: string, tx?: Tx): Promise<BusinessCalendar> {
    // Inside a transaction every read goes through it: PGlite has one connection, and a read beside it waits forever.
    const agency = await this.d.agencies.findById(agencyId, tx);
    return { hours: agency?.businessHours ?? null, holidays: agency?.holidays ?? [] };
  }

  /**
   * Sets the clocks a case of this type and priority has, counted from when its clocks first started (now, for
   * a new case). Without a target for the priority, the case has no SLA (and loses clocks it had).
   */
  async apply(
    tx: Tx,
    kase: { id: string; agencyId: string; priority: Priority },
    type: CaseTypeRow | undefined,
    opts: { firstResponseMet?: boolean } = {},
  ): Promise<void> {
    const target = type?.sla?.[kase.priority];
    if (!target) {
      await this.d.slas.removeForCase(tx, kase.id);
      return;
    }
    const cal = await this.calendar(kase.agencyId, tx);
    const existing = await this.d.slas.listForCase(kase.id, tx);
    const start = existing[0] ? new Date(existing[0].startedAt) : this.d.now();
    const clocks: [Metric, number][] = [
      ['first_response', target.firstResponseMinutes],
      ['resolution', target.resolutionMinutes],
    ];
    for (const [metric, minutes] of clocks) {
      await this.d.slas.upsert(tx, {
        caseId: kase.id,
        metric,
        targetMinutes: minutes,
        startedAt: start.toISOString(),
        warnAt: addBusinessMinutes(start, minutes * WARN_SHARE, cal).toISOString(),
        dueAt: addBusinessMinutes(start, minutes, cal).toISOString(),
        metAt: metric === 'first_response' && opts.firstResponseMet ? start.toISOString() : null,
      });
    }
  }

  /** The case waits for the constituent: its running clocks stop. */
  async pause(tx: Tx, caseId: string): Promise<void> {
    await this.d.slas.pause(tx, caseId, this.d.now().toISOString());
  }

  /** The case is back with the agency: each paused clock's instants move later by the business time it waited. */
  async resume(tx: Tx, caseId: string, agencyId: string): Promise<void> {
    const paused = await this.d.slas.paused(tx, caseId);
    if (!paused.length) return;
    const cal = await this.calendar(agencyId, tx);
    const now = this.d.now();
    for (const c of paused) {
      const waited = businessMinutesBetween(new Date(c.pausedAt!), now, cal);
      await this.d.slas.resume(
        tx,
        caseId,
        c.metric,
        addBusinessMinutes(new Date(c.warnAt), waited, cal).toISOString(),
        addBusinessMinutes(new Date(c.dueAt), waited, cal).toISOString(),
      );
    }
  }

  /** Stops a clock; true the first time only. */
  async met(tx: Tx | Db, caseId: string, metric: Metric): Promise<boolean> {
    return this.d.slas.meet(tx, caseId, metric, this.d.now().toISOString());
  }

  async reopened(tx: Tx, caseId: string): Promise<void> {
    await this.d.slas.unmeet(tx, caseId, 'resolution');
  }

  async clocks(caseId: string): Promise<SlaClock[]> {
    return (await this.d.slas.listForCase(caseId)).map(toClock);
  }

  /** Sends every warning and breach that is due; returns how many it sent. */
  async tick(): Promise<number> {
    const now = this.d.now().toISOString();
    let sent = 0;
    for (const level of ['warning', 'breach'] as const) {
      for (const { clock, kase } of await this.d.slas.claimDue(level, now)) {
        const data = { metric: clock.metric, dueAt: toIso(clock.dueAt) };
        await this.d.addEvent(kase.id, level === 'warning' ? 'sla.warning' : 'sla.breached', data);
        this.d.notifier.slaAlert(kase, { caseId: kase.id, reference: kase.reference, title: kase.title, level, ...data });
        // Open case panels reload and show the new state of the clock.
        const { id, status, priority, tags, version } = kase;
        this.d.notifier.caseUpdated(kase, { caseId: id, status, priority, tags, version });
        sent++;
      }
    }
    return sent;
  }
}

function toClock(r: SlaRow): SlaClock {
  const iso = (v: string | null) => (v ? toIso(v) : null);
  return {
    metric: r.metric,
    targetMinutes: r.targetMinutes,
    dueAt: toIso(r.dueAt),
    warnAt: toIso(r.warnAt),
    pausedAt: iso(r.pausedAt),
    metAt: iso(r.metAt),
    warnedAt: iso(r.warnedAt),
    breachedAt: iso(r.breachedAt),
  };
}
