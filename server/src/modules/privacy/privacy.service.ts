import { and, asc, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { rowsOf } from '../../db/client.js';
import { agencies, attachments, cases, constituents, conversations, deletionRequests, messages, users, widgetSessions } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { ConversationService } from '../conversations/conversation.service.js';
import type { ConstituentPrincipal, StaffPrincipal } from '../principal.js';
import type { PurgeCounts, RetentionService } from '../retention/retention.service.js';

export interface DeletionRequestView {
  id: string;
  status: 'pending' | 'approved' | 'denied';
  source: 'portal' | 'staff';
  caseReference: string | null;
  constituentName: string | null;
  note: string;
  createdAt: string;
  requestedBy: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionNote: string | null;
  reportId: string | null;
  /** References of the constituent's cases on legal hold: approval is refused while any is. */
  heldCases: string[];
}

/**
 * A constituent's own data (issue #11): an export of their conversations and cases, public content only, and
 * deletion requests that admins approve or deny. Approval removes the data through the same code path as
 * retention (RetentionService.purgeCase); a case on legal hold blocks it, and nothing changes.
 */
export class PrivacyService {
  constructor(
    private readonly d: {
      db: Db;
      audit: AuditRepository;
      retention: RetentionService;
      /** Ends the person's open conversations the way any ending is announced (consoles update live). */
      conversations: Pick<ConversationService, 'endAllForConstituent'>;
      now: () => Date;
    },
  ) {}

  /** Everything the constituent wrote and was told: their cases and public messages; never internal notes. */
  async export(p: ConstituentPrincipal) {
    const [person] = await this.d.db.select().from(constituents).where(and(eq(constituents.id, p.constituentId), eq(constituents.agencyId, p.agencyId)));
    if (!person) throw new AppError('NOT_FOUND', 'Nothing to export');
    const [agency] = await this.d.db.select({ name: agencies.name }).from(agencies).where(eq(agencies.id, p.agencyId));
    const myCases = await this.d.db
      .select({ id: cases.id, reference: cases.reference, title: cases.title, status: cases.status, createdAt: cases.createdAt, updatedAt: cases.updatedAt, awaiting: cases.awaitingRequest })
      .from(cases)
      .where(and(eq(cases.constituentId, p.constituentId), eq(cases.agencyId, p.agencyId), isNull(cases.purgedAt)))
      .orderBy(asc(cases.createdAt));
    const convs = await this.d.db
      .select({ id: conversations.id, channel: conversations.channel, status: conversations.status, caseId: conversations.caseId, createdAt: conversations.createdAt, endedAt: conversations.endedAt })
      .from(conversations)
      .where(and(eq(conversations.constituentId, p.constituentId), eq(conversations.agencyId, p.agencyId)))
      .orderBy(asc(conversations.createdAt));
    const ids = convs.map((c) => c.id);
    const msgs = ids.length
      ? await this.d.db
          .select({ id: messages.id, conversationId: messages.conversationId, seq: messages.seq, authorKind: messages.authorKind, authorName: messages.authorName, body: messages.body, channel: messages.channel, createdAt: messages.createdAt })
          .from(messages)
          .where(and(inArray(messages.conversationId, ids), eq(messages.visibility, 'public')))
          .orderBy(asc(messages.conversationId), asc(messages.seq))
      : [];
    const files = msgs.length
      ? await this.d.db
          .select({ messageId: attachments.messageId, filename: attachments.filename, contentType: attachments.contentType, size: attachments.size })
          .from(attachments)
          .where(inArray(attachments.messageId, msgs.map((m) => m.id)))
      : [];
    const refOf = new Map(myCases.map((c) => [c.id, c.reference]));
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'constituent', actorId: p.constituentId, action: 'constituent.export', objectType: 'constituent', objectId: p.constituentId, outcome: 'success', detail: { cases: myCases.length, conversations: convs.length, messages: msgs.length } });
    return {
      exportedAt: this.d.now().toISOString(),
      agency: agency?.name ?? '',
      you: { name: person.displayName, email: person.email, phone: person.phone, language: person.language },
      cases: myCases.map(({ id: _id, ...c }) => c),
      conversations: convs.map((c) => ({
        channel: c.channel,
        status: c.status,
        caseReference: refOf.get(c.caseId) ?? null,
        startedAt: c.createdAt,
        endedAt: c.endedAt,
        messages: msgs
          .filter((m) => m.conversationId === c.id)
          .map((m) => ({
            at: m.createdAt,
            from: m.authorKind === 'constituent' ? 'you' : m.authorKind === 'agent' ? (m.authorName ?? 'agency') : 'agency',
            channel: m.channel,
            text: m.body,
            attachments: files.filter((f) => f.messageId === m.id).map(({ messageId: _m, ...f }) => f),
          })),
      })),
    };
  }

  /** The constituent asks, from the portal (a verified session), for their data to be deleted. */
  async requestFromPortal(p: ConstituentPrincipal, note: string): Promise<DeletionRequestView> {
    const [session] = await this.d.db.select({ expiresAt: widgetSessions.expiresAt }).from(widgetSessions).where(eq(widgetSessions.id, p.widgetSessionId));
    if (!session?.expiresAt) throw new AppError('FORBIDDEN', 'Sign in to the portal with the code we sent you to ask for deletion');
    const [kase] = await this.d.db.select({ id: cases.id }).from(cases).where(and(eq(cases.constituentId, p.constituentId), eq(cases.agencyId, p.agencyId))).orderBy(desc(cases.createdAt)).limit(1);
    const id = await this.insert({ agencyId: p.agencyId, constituentId: p.constituentId, caseId: kase?.id ?? null, source: 'portal', requestedBy: null, note });
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'constituent', actorId: p.constituentId, action: 'deletion_request.create', objectType: 'deletion_request', objectId: id, outcome: 'success', detail: { source: 'portal' } });
    return this.one(p.agencyId, id);
  }

  /** An admin records a request the constituent made another way (letter, phone), naming one of their cases. */
  async recordForCase(p: StaffPrincipal, caseReference: string, note: string): Promise<DeletionRequestView> {
    this.admin(p);
    const [kase] = await this.d.db.select({ id: cases.id, constituentId: cases.constituentId }).from(cases).where(and(eq(cases.agencyId, p.agencyId), eq(cases.reference, caseReference.trim().toUpperCase())));
    if (!kase) throw new AppError('INVALID_PAYLOAD', 'No case with this reference', { issues: [{ path: ['caseReference'], message: 'No case with this reference' }] });
    if (!kase.constituentId) throw new AppError('INVALID_PAYLOAD', 'This case has no constituent', { issues: [{ path: ['caseReference'], message: 'This case has no constituent' }] });
    const id = await this.insert({ agencyId: p.agencyId, constituentId: kase.constituentId, caseId: kase.id, source: 'staff', requestedBy: p.userId, note });
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'deletion_request.create', objectType: 'deletion_request', objectId: id, outcome: 'success', detail: { source: 'staff' } });
    return this.one(p.agencyId, id);
  }

  private async insert(row: typeof deletionRequests.$inferInsert): Promise<string> {
    const [created] = await this.d.db.insert(deletionRequests).values(row).onConflictDoNothing().returning({ id: deletionRequests.id });
    if (!created) throw new AppError('CONFLICT', 'A deletion request for this person is already waiting for a decision');
    return created.id;
  }

  async list(p: StaffPrincipal): Promise<DeletionRequestView[]> {
    this.admin(p);
    const rows = await this.d.db.select({ id: deletionRequests.id }).from(deletionRequests).where(eq(deletionRequests.agencyId, p.agencyId)).orderBy(desc(deletionRequests.createdAt)).limit(200);
    return Promise.all(rows.map((r) => this.one(p.agencyId, r.id)));
  }

  /** Denies a pending request, with a reason (kept and audited). */
  async deny(p: StaffPrincipal, id: string, note: string): Promise<DeletionRequestView> {
    this.admin(p);
    const [row] = await this.d.db
      .update(deletionRequests)
      .set({ status: 'denied', decidedBy: p.userId, decidedAt: sql`now()` as unknown as string, decisionNote: note })
      .where(and(eq(deletionRequests.id, id), eq(deletionRequests.agencyId, p.agencyId), eq(deletionRequests.status, 'pending')))
      .returning();
    if (!row) throw await this.notPending(p.agencyId, id);
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'deletion_request.deny', objectType: 'deletion_request', objectId: id, outcome: 'success' });
    return this.one(p.agencyId, id);
  }

  /**
   * Approves a pending request: every case of the constituent loses its data through the retention code path,
   * then the constituent is anonymised, in one transaction with a signed report. Refused (nothing changed) while
   * any of their cases is on legal hold, or when the admin approving is the one who recorded the request.
   */
  async approve(p: StaffPrincipal, id: string, note: string): Promise<DeletionRequestView> {
    this.admin(p);
    const request = await this.one(p.agencyId, id);
    if (request.status !== 'pending') throw await this.notPending(p.agencyId, id);
    if (request.requestedBy === p.userId) throw new AppError('FORBIDDEN', 'Another admin must approve a deletion you recorded (two people for every erasure)');
    if (request.heldCases.length) {
      await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'deletion_request.approve', objectType: 'deletion_request', objectId: id, outcome: 'denied', detail: { reason: 'legal_hold', heldCases: request.heldCases.length } });
      throw new AppError('CONFLICT', `Cannot delete while ${request.heldCases.join(', ')} ${request.heldCases.length === 1 ? 'is' : 'are'} on legal hold. Clear the hold first, or deny the request.`);
    }
    const announce = await this.d.db.transaction(async (tx) => {
      const [claimed] = await tx
        .update(deletionRequests)
        .set({ status: 'approved', decidedBy: p.userId, decidedAt: sql`now()` as unknown as string, decisionNote: note })
        .where(and(eq(deletionRequests.id, id), eq(deletionRequests.status, 'pending')))
        .returning();
      if (!claimed) throw new AppError('CONFLICT', 'This request was decided meanwhile');
      const constituentId = claimed.constituentId;
      // Open conversations end: there will be nothing left to continue. Through the conversation service, so the
      // consoles showing them hear it once this commits (a raw UPDATE left them "waiting" until a reload).
      const announceEnded = await this.d.conversations.endAllForConstituent(tx, constituentId, p, 'deletion_request');
      const own = rowsOf<{ id: string }>(await tx.execute(sql`select id from cases where constituent_id = ${constituentId} and purged_at is null order by id for update`));
      const total: PurgeCounts = { cases: 0, messages: 0, attachments: 0, recordings: 0, secureFields: 0, portalCodes: 0, timelineEntries: 0, constituents: 0 };
      const hashes: string[] = [];
      for (const c of own) {
        const counts = await this.d.retention.purgeCase(tx, c.id, 'deletion_request');
        // A hold set meanwhile: undefined here; refuse the whole approval.
        if (!counts) throw new AppError('CONFLICT', 'A case of this person was put on legal hold meanwhile; nothing was deleted');
        for (const k of Object.keys(total) as (keyof PurgeCounts)[]) total[k] += counts[k];
        hashes.push(this.d.retention.hashId(p.agencyId, c.id));
      }
      await tx.execute(sql`update cases set status = 'closed' where constituent_id = ${constituentId} and status not in ('closed', 'cancelled')`);
      total.constituents += await this.d.retention.anonymiseIfDone(tx, constituentId);
      const report = await this.d.retention.writeReport(p.agencyId, 'deletion_request', this.d.now(), total, hashes, tx);
      await tx.update(deletionRequests).set({ reportId: report.id }).where(eq(deletionRequests.id, id));
      await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'deletion_request.approve', objectType: 'deletion_request', objectId: id, outcome: 'success', detail: { ...total, reportId: report.id } }, tx);
      return announceEnded;
    });
    // Live updates are a courtesy after the commit: a failure to announce must not turn a done erasure into an error.
    await announce().catch(() => undefined);
    return this.one(p.agencyId, id);
  }

  private admin(p: StaffPrincipal) {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins handle deletion requests');
  }

  private async notPending(agencyId: string, id: string): Promise<AppError> {
    const [row] = await this.d.db.select({ status: deletionRequests.status }).from(deletionRequests).where(and(eq(deletionRequests.id, id), eq(deletionRequests.agencyId, agencyId)));
    return row ? new AppError('CONFLICT', `This request was already ${row.status}`) : new AppError('NOT_FOUND', 'Deletion request not found');
  }

  private async one(agencyId: string, id: string): Promise<DeletionRequestView> {
    const [r] = await this.d.db
      .select({ r: deletionRequests, name: constituents.displayName, reference: cases.reference })
      .from(deletionRequests)
      .innerJoin(constituents, eq(constituents.id, deletionRequests.constituentId))
      .leftJoin(cases, eq(cases.id, deletionRequests.caseId))
      .where(and(eq(deletionRequests.id, id), eq(deletionRequests.agencyId, agencyId)));
    if (!r) throw new AppError('NOT_FOUND', 'Deletion request not found');
    const held = await this.d.db
      .select({ reference: cases.reference })
      .from(cases)
      .where(and(eq(cases.constituentId, r.r.constituentId), sql`${cases.legalHoldAt} is not null`, isNull(cases.purgedAt)));
    const names = await this.d.db.select({ id: users.id, name: users.displayName }).from(users).where(inArray(users.id, [r.r.requestedBy, r.r.decidedBy].filter((x): x is string => Boolean(x)).concat('00000000-0000-0000-0000-000000000000')));
    const nameOf = (uid: string | null) => (uid ? (names.find((n) => n.id === uid)?.name ?? null) : null);
    return {
      id: r.r.id,
      status: r.r.status,
      source: r.r.source,
      caseReference: r.reference,
      constituentName: r.name,
      note: r.r.note,
      createdAt: r.r.createdAt,
      requestedBy: r.r.requestedBy,
      decidedBy: nameOf(r.r.decidedBy),
      decidedAt: r.r.decidedAt,
      decisionNote: r.r.decisionNote,
      reportId: r.r.reportId,
      heldCases: held.map((h) => h.reference),
    };
  }
}
