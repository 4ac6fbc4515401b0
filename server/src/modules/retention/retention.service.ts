import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { rowsOf } from '../../db/client.js';
import { cases, purgeReports } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { PurgeSigner } from './purge-signer.js';

/** What one purge removed. */
export interface PurgeCounts {
  cases: number;
  messages: number;
  attachments: number;
  recordings: number;
  secureFields: number;
  portalCodes: number;
  timelineEntries: number;
  constituents: number;
}
const zero = (): PurgeCounts => ({ cases: 0, messages: 0, attachments: 0, recordings: 0, secureFields: 0, portalCodes: 0, timelineEntries: 0, constituents: 0 });
const add = (a: PurgeCounts, b: PurgeCounts) => (Object.keys(a) as (keyof PurgeCounts)[]).forEach((k) => (a[k] += b[k]));

export interface PurgeReportView {
  id: string;
  kind: 'retention' | 'deletion_request';
  createdAt: string;
  asOf: string;
  counts: PurgeCounts;
  caseHashes: string[];
  keyId: string;
  signature: string;
  body: string;
}

const BATCH = 100;
const n = async (tx: Tx | Db, q: ReturnType<typeof sql>) => rowsOf<{ n: number }>(await tx.execute(q))[0]?.n ?? 0;

/**
 * Retention and erasure (issue #11). After its case type's retention period, a closed or cancelled case loses
 * its messages, files, recording links and transcriptions, secure values, portal codes and timeline details, its
 * title and custom fields; the constituent's name, email and phone go too once none of their cases is left. The
 * case row stays (reference, type, status, dates) for statistics. A case on legal hold is never touched. Each
 * case is claimed by one conditional UPDATE inside the transaction that purges it, so two runners (or a rerun)
 * purge it once. Every run that purges anything writes an Ed25519-signed report (counts, hashed ids) and an
 * audit row; the audit log itself is never purged.
 */
export class RetentionService {
  private lastSweep = 0;

  constructor(
    private readonly d: {
      db: Db;
      audit: AuditRepository;
      signer: PurgeSigner;
      logger: Logger;
      now: () => Date;
    },
  ) {}

  /**
   * Claims and purges one case in `tx`. `expiredBefore`: retention — only a closed or cancelled case last
   * changed before then. Undefined when the case was not claimed (held, already purged, not expired).
   */
  async purgeCase(tx: Tx, caseId: string, reason: 'retention' | 'deletion_request', expiredBefore?: Date): Promise<PurgeCounts | undefined> {
    const title = reason === 'retention' ? 'Removed under the retention schedule' : 'Removed at the constituent’s request';
    const expired = expiredBefore ? sql`and status in ('closed', 'cancelled') and updated_at < ${expiredBefore.toISOString()}` : sql``;
    const claimed = rowsOf<{ constituent_id: string | null }>(
      await tx.execute(sql`
        update cases set purged_at = now(), title = ${title}, custom_fields = '{}'::jsonb, tags = '{}'::text[], awaiting_request = null
        where id = ${caseId} and purged_at is null and legal_hold_at is null ${expired}
        returning constituent_id`),
    );
    if (!claimed.length) return undefined;
    const convs = sql`(select id from conversations where case_id = ${caseId})`;
    const c = zero();
    c.cases = 1;
    c.attachments = await n(tx, sql`with d as (delete from attachments where conversation_id in ${convs} returning 1) select count(*)::int as n from d`);
    c.secureFields = await n(tx, sql`with d as (delete from secure_fields where case_id = ${caseId} or conversation_id in ${convs} returning 1) select count(*)::int as n from d`);
    c.messages = await n(tx, sql`with d as (delete from messages where conversation_id in ${convs} returning 1) select count(*)::int as n from d`);
    await tx.execute(sql`update conversations set rating_comment = null where case_id = ${caseId}`);
    c.recordings = await n(
      tx,
      sql`with u as (update calls set recording_url = null, recording_sid = null, transcription_text = null, from_number = 'removed'
          where (case_id = ${caseId} or conversation_id in ${convs}) and (recording_url is not null or transcription_text is not null) returning 1)
          select count(*)::int as n from u`,
    );
    await tx.execute(sql`update calls set from_number = 'removed' where case_id = ${caseId} or conversation_id in ${convs}`);
    c.portalCodes = await n(tx, sql`with d as (delete from portal_codes where case_id = ${caseId} returning 1) select count(*)::int as n from d`);
    c.timelineEntries = await n(tx, sql`with u as (update case_events set data = '{}'::jsonb where case_id = ${caseId} and data <> '{}'::jsonb returning 1) select count(*)::int as n from u`);
    const constituentId = claimed[0]!.constituent_id;
    if (constituentId) c.constituents = await this.anonymiseIfDone(tx, constituentId);
    return c;
  }

  /** Removes a constituent's name, email, phone and addresses once none of their cases still holds data. */
  async anonymiseIfDone(tx: Tx, constituentId: string): Promise<number> {
    const done = await n(
      tx,
      sql`with u as (update constituents set display_name = null, email = null, phone = null, anonymised_at = now()
          where id = ${constituentId} and anonymised_at is null
            and not exists (select 1 from cases where constituent_id = ${constituentId} and purged_at is null)
          returning 1) select count(*)::int as n from u`,
    );
    if (done) {
      await tx.execute(sql`update channel_identities set address = 'removed:' || id::text where constituent_id = ${constituentId}`);
      await tx.execute(sql`update widget_sessions set revoked_at = coalesce(revoked_at, now()) where constituent_id = ${constituentId}`);
    }
    return done;
  }

  /** The timers' entry: a retention run at most once an hour. */
  async sweep(): Promise<number> {
    const now = this.d.now().getTime();
    if (now - this.lastSweep < 3_600_000) return 0;
    this.lastSweep = now;
    return (await this.run()).reduce((s, r) => s + r.counts.cases, 0);
  }

  /** One retention run over every agency, as of the clock's now. Returns the reports it wrote. */
  async run(): Promise<PurgeReportView[]> {
    const asOf = this.d.now();
    const due = rowsOf<{ id: string; agency_id: string; retention_days: number }>(
      await this.d.db.execute(sql`
        select c.id, c.agency_id, coalesce(t.retention_days, 2555) as retention_days
        from cases c left join case_types t on t.id = c.case_type_id
        where c.status in ('closed', 'cancelled') and c.purged_at is null and c.legal_hold_at is null
          and c.updated_at < ${asOf.toISOString()}::timestamptz - make_interval(days => coalesce(t.retention_days, 2555))
        order by c.agency_id, c.updated_at
        limit 5000`),
    );
    const byAgency = new Map<string, { counts: PurgeCounts; hashes: string[] }>();
    for (let i = 0; i < due.length; i += BATCH) {
      for (const row of due.slice(i, i + BATCH)) {
        const cutoff = new Date(asOf.getTime() - row.retention_days * 86_400_000);
        const counts = await this.d.db.transaction((tx) => this.purgeCase(tx, row.id, 'retention', cutoff));
        if (!counts) continue;
        const a = byAgency.get(row.agency_id) ?? { counts: zero(), hashes: [] };
        add(a.counts, counts);
        a.hashes.push(this.d.signer.hashId(row.agency_id, row.id));
        byAgency.set(row.agency_id, a);
      }
    }
    const reports: PurgeReportView[] = [];
    for (const [agencyId, a] of byAgency) {
      const report = await this.writeReport(agencyId, 'retention', asOf, a.counts, a.hashes);
      await this.d.audit.record({
        agencyId,
        actorKind: 'system',
        actorId: null,
        action: 'retention.purge',
        objectType: 'purge_report',
        objectId: report.id,
        outcome: 'success',
        detail: { ...a.counts, keyId: report.keyId },
      });
      reports.push(report);
    }
    if (reports.length) this.d.logger.info({ reports: reports.length, cases: due.length }, 'retention run purged expired cases');
    return reports;
  }

  /** A case id as reports list it (per-agency HMAC). */
  hashId(agencyId: string, caseId: string): string {
    return this.d.signer.hashId(agencyId, caseId);
  }

  /** Signs and stores a report. */
  async writeReport(agencyId: string, kind: PurgeReportView['kind'], asOf: Date, counts: PurgeCounts, hashes: string[], tx: Tx | Db = this.d.db): Promise<PurgeReportView> {
    const body = JSON.stringify({ v: 1, agencyId, kind, asOf: asOf.toISOString(), counts, caseHashes: [...hashes].sort(), keyId: this.d.signer.keyId });
    const [row] = await tx
      .insert(purgeReports)
      .values({ agencyId, kind, body, signature: this.d.signer.sign(body), keyId: this.d.signer.keyId })
      .returning();
    return this.view(row!);
  }

  private view(row: typeof purgeReports.$inferSelect): PurgeReportView {
    const b = JSON.parse(row.body) as { asOf: string; counts: PurgeCounts; caseHashes: string[] };
    return { id: row.id, kind: row.kind, createdAt: row.createdAt, asOf: b.asOf, counts: b.counts, caseHashes: b.caseHashes, keyId: row.keyId, signature: row.signature, body: row.body };
  }

  // ---- admin and auditor views -------------------------------------------------------------------------

  private reader(p: StaffPrincipal) {
    if (p.role !== 'admin' && p.role !== 'auditor') throw new AppError('FORBIDDEN', 'Only admins and auditors read purge reports');
  }

  async reports(p: StaffPrincipal): Promise<PurgeReportView[]> {
    this.reader(p);
    const rows = await this.d.db.select().from(purgeReports).where(eq(purgeReports.agencyId, p.agencyId)).orderBy(desc(purgeReports.createdAt)).limit(200);
    return rows.map((r) => this.view(r));
  }

  /** Checks a stored report's signature against the server's purge key. */
  async verify(p: StaffPrincipal, id: string): Promise<{ id: string; valid: boolean; keyId: string; publicKey: string }> {
    this.reader(p);
    const [row] = await this.d.db.select().from(purgeReports).where(and(eq(purgeReports.id, id), eq(purgeReports.agencyId, p.agencyId)));
    if (!row) throw new AppError('NOT_FOUND', 'Purge report not found');
    const valid = row.keyId === this.d.signer.keyId && this.d.signer.verify(row.body, row.signature);
    return { id: row.id, valid, keyId: this.d.signer.keyId, publicKey: this.d.signer.publicKeyPem };
  }

  // ---- legal hold ----------------------------------------------------------------------------------------

  /** Whether a case is on hold; any staff member who can see the case may know (it explains why data stays). */
  async hold(p: StaffPrincipal, caseId: string) {
    const c = await this.visibleCase(p, caseId);
    return this.holdView(c);
  }

  async setHold(p: StaffPrincipal, caseId: string, reason: string) {
    const c = await this.adminCase(p, caseId);
    if (c.purgedAt) throw new AppError('CONFLICT', 'This case’s data was already removed; there is nothing left to hold');
    const [row] = await this.d.db
      .update(cases)
      .set({ legalHoldAt: sql`now()` as unknown as string, legalHoldBy: p.userId, legalHoldReason: reason })
      .where(eq(cases.id, caseId))
      .returning();
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'case.legal_hold_set', objectType: 'case', objectId: caseId, outcome: 'success', detail: { wasHeld: Boolean(c.legalHoldAt) } });
    return this.holdView(row!);
  }

  async clearHold(p: StaffPrincipal, caseId: string) {
    const c = await this.adminCase(p, caseId);
    const [row] = await this.d.db.update(cases).set({ legalHoldAt: null, legalHoldBy: null, legalHoldReason: null }).where(eq(cases.id, caseId)).returning();
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'case.legal_hold_cleared', objectType: 'case', objectId: caseId, outcome: 'success', detail: { wasHeld: Boolean(c.legalHoldAt) } });
    return this.holdView(row!);
  }

  private holdView(c: typeof cases.$inferSelect) {
    return { caseId: c.id, held: Boolean(c.legalHoldAt), since: c.legalHoldAt, reason: c.legalHoldReason, purgedAt: c.purgedAt };
  }

  private async visibleCase(p: StaffPrincipal, caseId: string) {
    const [c] = await this.d.db.select().from(cases).where(eq(cases.id, caseId));
    const sees = c && c.agencyId === p.agencyId && (p.role === 'admin' || (c.groupId !== null && p.groupIds.includes(c.groupId)) || c.assigneeId === p.userId);
    if (!c || !sees) throw new AppError('NOT_FOUND', 'Case not found');
    return c;
  }

  private async adminCase(p: StaffPrincipal, caseId: string) {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins set or clear a legal hold');
    return this.visibleCase(p, caseId);
  }
}

/** Runs retention under the timers' lock on one node at a time, hourly. */
export class RetentionTimer {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly d: {
      retention: RetentionService;
      exclusive: <T>(fn: () => Promise<T>) => Promise<T | undefined>;
      logger: Logger;
      intervalMs: number;
    },
  ) {}
  start(): void {
    if (this.timer || this.d.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      void this.d.exclusive(() => this.d.retention.sweep()).catch((err: unknown) => this.d.logger.error({ err }, 'retention run failed; retrying next time'));
    }, this.d.intervalMs);
    this.timer.unref();
  }
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
