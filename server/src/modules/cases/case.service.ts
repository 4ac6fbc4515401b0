import { DEFAULT_TRANSITIONS, STAGES, validateFields, type MyWork, type CaseDetail, type CaseStatus, type Priority, type Stage } from '@casebridge/shared';
import type { CaseTypeRow } from '../case-types/case-type.repository.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { CaseCreateInput } from '@casebridge/shared';
import type { z } from 'zod';
import type { Db, Tx } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { Mailer } from '../../lib/mailer.js';
import { toIso } from '../../lib/time.js';
import type { Notifier } from '../../realtime/notifier.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { SlaService } from '../sla/sla.service.js';
import type { TaskRepository, TaskRow } from '../tasks/task.repository.js';
import type { CaseChange, CaseRepository, CaseRow } from './case.repository.js';
import { constituentText, languageOf, type ConstituentLanguage } from '../constituent-text.js';

export interface CaseDeps {
  db: Db;
  cases: CaseRepository;
  constituents: Pick<ConstituentRepository, 'findOrCreate'>;
  /** Bound late (the conversation service is built after this one). */
  tellConstituent: (caseId: string, say: (language: ConstituentLanguage) => string) => Promise<boolean>;
  agencies: Pick<AgencyRepository, 'findById' | 'findGroup' | 'defaultGroupId'>;
  now?: () => Date;
  caseTypes: { get(agencyId: string, id: string, tx?: Tx): Promise<CaseTypeRow | undefined> };
  audit: AuditRepository;
  notifier: Notifier;
  tasks: TaskRepository;
  sla: SlaService;
  staffInAgency: (agencyId: string, userId: string) => Promise<boolean>;
  mailer?: Mailer;
  /** For the portal link in emails. */
  publicBaseUrl?: string;
}

/**
 * Who may see a case: staff of its agency in its group, its assignee, and admins. Anything else is
 * NOT_FOUND, so case ids cannot be probed.
 */
/** Where a case may go next: its type's workflow if it defines one, else the shipped default. */
function transitionsFor(type: CaseTypeRow | undefined): Record<CaseStatus, CaseStatus[]> {
  return { ...DEFAULT_TRANSITIONS, ...((type?.transitions as Partial<Record<CaseStatus, CaseStatus[]>> | null) ?? {}) };
}

function canSee(p: StaffPrincipal, c: CaseRow): boolean {
  if (c.agencyId !== p.agencyId) return false;
  if (p.role === 'admin') return true;
  return (c.groupId !== null && p.groupIds.includes(c.groupId)) || c.assigneeId === p.userId;
}

/** Cases: the detail the console's case panel shows, and the workflow's status changes. */
export class CaseService {
  constructor(private readonly d: CaseDeps) {}

  private async visible(p: StaffPrincipal, caseId: string): Promise<CaseRow> {
    const c = await this.d.cases.findById(caseId);
    if (!c || !canSee(p, c)) throw new AppError('NOT_FOUND', 'Case not found');
    return c;
  }

  /** A case the principal may change: visible, and not an admin (admins read, they do not work cases). */
  private async workable(p: StaffPrincipal, caseId: string): Promise<CaseRow> {
    const c = await this.visible(p, caseId);
    if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins can read cases but not work them');
    return c;
  }

  /** A staff member opens a case: every such read is audited (issue #11). */
  async read(p: StaffPrincipal, caseId: string): Promise<CaseDetail> {
    const detail = await this.detail(p, caseId);
    await this.d.audit.record({ agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, actorRole: p.role, action: 'case.read', objectType: 'case', objectId: detail.id, outcome: 'success' });
    return detail;
  }

  async detail(p: StaffPrincipal, caseId: string): Promise<CaseDetail> {
    const c = await this.visible(p, caseId);
    const [names, who, events, links, type, tasks, sla] = await Promise.all([
      this.d.cases.names(c),
      this.d.cases.constituentOf(c),
      this.d.cases.timeline(c.id),
      this.d.cases.links(c.id),
      c.caseTypeId ? this.d.caseTypes.get(c.agencyId, c.caseTypeId) : Promise.resolve(undefined),
      this.d.tasks.listForCase(c.id),
      this.d.sla.clocks(c.id),
    ]);
    return {
      id: c.id,
      reference: c.reference,
      title: c.title,
      status: c.status,
      priority: c.priority,
      groupId: c.groupId,
      assigneeId: c.assigneeId,
      ...names,
      version: c.version,
      tags: c.tags,
      caseType: type ? { id: type.id, name: type.name, fields: type.fields } : null,
      fields: c.customFields,
      links,
      allowedStatuses: transitionsFor(type)[c.status],
      stage: c.stage,
      tasks: tasks.map(({ task: t, assigneeName, doneByName }) => ({
        id: t.id,
        key: t.templateKey,
        stage: t.stage,
        title: t.title,
        instructions: t.instructions,
        required: t.required,
        action: t.action ?? null,
        assigneeId: t.assigneeId,
        assigneeName,
        groupId: t.groupId,
        dueAt: t.dueAt ? toIso(t.dueAt) : null,
        doneAt: t.doneAt ? toIso(t.doneAt) : null,
        doneByName,
      })),
      sla,
      awaiting: c.status === 'awaiting_info' ? c.awaitingRequest : null,
      mergedInto: c.mergedIntoId ? ((await this.d.cases.referenceOf(c.mergedIntoId)) ?? null) : null,
      constituent: who
        ? {
            id: who.person.id,
            displayName: who.person.displayName,
            email: who.person.email,
            phone: who.person.phone,
            language: who.person.language,
            otherCases: who.otherCases,
            conversations: who.conversations.map((v) => ({ ...v, createdAt: toIso(v.createdAt) })),
          }
        : null,
      events: events.map(({ event: e, actorName }) => ({
        id: e.id,
        kind: e.kind,
        actorKind: e.actorKind,
        actorName,
        conversationId: e.conversationId,
        data: e.data,
        createdAt: toIso(e.createdAt),
      })),
      createdAt: toIso(c.createdAt),
      updatedAt: toIso(c.updatedAt),
    };
  }

  /**
   * Status moves only along the workflow, and stages only forward past finished required tasks; `version`
   * guards against two people changing the case at once.
   */
  async update(
    p: StaffPrincipal,
    caseId: string,
    input: {
      version: number;
      status?: CaseStatus;
      priority?: Priority;
      tags?: string[];
      caseTypeId?: string;
      fields?: Record<string, unknown>;
      stage?: Stage;
      request?: string;
    },
  ): Promise<CaseDetail> {
    const c = await this.workable(p, caseId);
    const typeId = input.caseTypeId ?? c.caseTypeId;
    const type = typeId ? await this.d.caseTypes.get(p.agencyId, typeId) : undefined;
    if (input.caseTypeId && !type) throw issue('caseTypeId', 'No such case type');
    if (input.status && input.status !== c.status && !transitionsFor(type)[c.status].includes(input.status)) {
      throw issue('status', `A ${label(c.status)} case cannot become ${label(input.status)}`);
    }
    // Checked after the workflow: a move that is not allowed is refused for that reason first.
    const asking = input.status === 'awaiting_info' && c.status !== 'awaiting_info';
    if (asking && !input.request) throw issue('request', 'Say what you need from the constituent');
    if (input.request && !asking) throw issue('request', 'A request goes with moving the case to Awaiting info');
    let customFields: Record<string, unknown> | undefined;
    if (input.fields || input.caseTypeId) {
      if (!type) throw issue('fields', 'Choose a case type before filling in its fields');
      const merged = { ...c.customFields, ...(input.fields ?? {}) };
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      const problems = validateFields(type.fields, merged, { partial: true });
      if (problems.length) throw new AppError('INVALID_PAYLOAD', problems[0]!.message, { issues: problems });
      customFields = merged;
    }
    const typeChanged = !!input.caseTypeId && input.caseTypeId !== c.caseTypeId;
    // A case is decided with its required fields filled in and its required tasks done.
    const deciding = !!input.status && input.status !== c.status && (input.status === 'resolved' || input.status === 'closed');
    if (type && deciding) {
      const missing = validateFields(type.fields, customFields ?? c.customFields);
      if (missing.length) {
        throw new AppError('INVALID_PAYLOAD', `Fill in the required fields first: ${missing.map((m) => m.message).join('; ')}`, {
          issues: missing,
        });
      }
    }
    if (deciding && !typeChanged) await this.assertTasksDone(c.id, undefined, 'status');
    if (deciding && typeChanged && type?.playbook.some((t) => t.required)) {
      throw issue('status', 'Set the case type first: its playbook has required tasks to do before a decision');
    }
    if (input.stage && input.stage !== c.stage && STAGES.indexOf(input.stage) > STAGES.indexOf(c.stage)) {
      // Moving on needs the required tasks of every stage being left behind.
      await this.assertTasksDone(c.id, STAGES.slice(0, STAGES.indexOf(input.stage)), 'stage');
    }
    const tags = input.tags ? [...new Set(input.tags)].sort() : undefined;
    const sameTags = tags && tags.length === c.tags.length && tags.every((t, i) => t === [...c.tags].sort()[i]);
    const now = this.now();
    const newStatus = input.status && input.status !== c.status ? input.status : undefined;
    const change: CaseChange = {
      ...(newStatus ? { status: newStatus } : {}),
      ...(asking ? { awaitingRequest: input.request } : newStatus ? { awaitingRequest: null } : {}),
      ...(newStatus === 'resolved' ? { resolvedAt: now.toISOString() } : {}),
      ...(input.stage && input.stage !== c.stage ? { stage: input.stage } : {}),
      ...(input.priority && input.priority !== c.priority ? { priority: input.priority } : {}),
      ...(tags && !sameTags ? { tags } : {}),
      ...(typeChanged ? { caseTypeId: input.caseTypeId } : {}),
      ...(customFields && JSON.stringify(customFields) !== JSON.stringify(c.customFields) ? { customFields } : {}),
    };
    if (Object.keys(change).length === 0) return this.detail(p, caseId);

    const updated = await this.d.db.transaction(async (tx) => {
      const row = await this.d.cases.update(tx, c.id, input.version, change);
      if (!row) return undefined;
      if (typeChanged) {
        await this.d.tasks.dropOpenPlaybookTasks(tx, c.id);
        await this.d.tasks.instantiate(tx, c.id, type!.playbook);
      }
      if (typeChanged || change.priority) await this.d.sla.apply(tx, row, type);
      if (newStatus) await this.clocksFollowStatus(tx, row, c.status);
      // One timeline entry per kind of change, in the order a reader expects.
      const events: [kind: string, data: Record<string, unknown>][] = [];
      if (change.status) {
        events.push(['case.status_changed', { from: c.status, to: change.status, ...(asking ? { request: input.request } : {}) }]);
      }
      if (change.stage) events.push(['case.stage_changed', { from: c.stage, to: change.stage }]);
      if (change.tags) {
        const added = change.tags.filter((t) => !c.tags.includes(t));
        const removed = c.tags.filter((t) => !change.tags!.includes(t));
        events.push(['case.tags_changed', { added, removed }]);
      }
      if (change.priority) events.push(['case.priority_changed', { from: c.priority, to: change.priority }]);
      if (change.caseTypeId) events.push(['case.type_changed', { to: type!.name }]);
      if (change.customFields) {
        const changed = Object.keys({ ...c.customFields, ...change.customFields }).filter(
          (k) => JSON.stringify(c.customFields[k]) !== JSON.stringify(change.customFields![k]),
        );
        events.push(['case.fields_changed', { fields: changed }]);
      }
      for (const [kind, data] of events) {
        await this.d.cases.addEvent(tx, { caseId: c.id, kind, actorKind: 'agent', actorUserId: p.userId, data });
      }
      await this.d.audit.record(
        {
          agencyId: p.agencyId,
          actorKind: 'staff',
          actorId: p.userId,
          action: 'case.update',
          objectType: 'case',
          objectId: c.id,
          outcome: 'success',
          detail: change,
        },
        tx,
      );
      return row;
    });
    if (!updated) throw new AppError('CONFLICT', 'Someone else changed this case. Reload it and try again.');
    this.announce(updated);
    if (asking && input.request) {
      // Told at once where they are; a courtesy that must not undo the change if it fails.
      const request = input.request;
      await this.tell(c, (lang) => constituentText(lang).awaitingInfo(c.reference, request));
    }
    return this.detail(p, caseId);
  }

  /**
   * Tells the constituent something about their case: in their open conversation if there is one, else by
   * email with a link to the portal, where it also shows. A courtesy: failing to tell never undoes the change.
   */
  private async tell(c: CaseRow, say: (language: ConstituentLanguage) => string): Promise<void> {
    try {
      if (await this.d.tellConstituent(c.id, say)) return;
      const who = await this.d.cases.constituentOf(c);
      const es = languageOf(who?.person.language) === 'es';
      const body = say(es ? 'es' : 'en');
      const email = who?.person.email;
      let via: 'email' | 'portal' = 'portal';
      if (email && this.d.mailer?.enabled) {
        const agency = await this.d.agencies.findById(c.agencyId);
        const link = agency && this.d.publicBaseUrl ? new URL(`/portal/${agency.slug}${es ? '?lang=es' : ''}`, this.d.publicBaseUrl).href : '';
        await this.d.mailer.send({
          to: email,
          subject: es ? `Novedades de su caso ${c.reference}` : `An update on your case ${c.reference}`,
          text: `${body}\n\n${es ? 'Puede responder y seguir su caso en' : 'You can reply and follow your case at'} ${link}\n${agency?.name ?? ''}`,
        });
        via = 'email';
      }
      await this.d.cases.addEvent(this.d.db, { caseId: c.id, kind: 'constituent.notified', actorKind: 'system', data: { via, body } });
    } catch {
      // best effort: the case change stands
    }
  }

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  /** SLA clocks follow the status: paused while waiting for the constituent, stopped when decided. */
  private async clocksFollowStatus(tx: Tx, row: CaseRow, from: CaseStatus): Promise<void> {
    if (row.status === 'awaiting_info') await this.d.sla.pause(tx, row.id);
    else if (from === 'awaiting_info') await this.d.sla.resume(tx, row.id, row.agencyId);
    if (row.status === 'resolved' || row.status === 'closed' || row.status === 'cancelled') {
      await this.d.sla.met(tx, row.id, 'resolution');
      await this.d.sla.met(tx, row.id, 'first_response');
    } else if (from === 'resolved') {
      await this.d.sla.reopened(tx, row.id);
    }
  }

  /** Refuses with the names of the required tasks still open in these stages (all stages when none given). */
  private async assertTasksDone(caseId: string, stages: Stage[] | undefined, field: 'status' | 'stage'): Promise<void> {
    const missing = await this.d.tasks.missingRequired(caseId, stages);
    if (!missing.length) return;
    const names = missing.map((t) => t.title).join(', ');
    throw new AppError('INVALID_PAYLOAD', `Finish the required tasks first: ${names}`, {
      issues: [
        { path: [field], message: `Finish the required tasks first: ${names}` },
        ...missing.map((t) => ({ path: ['tasks', t.id], message: `${t.title} is not done` })),
      ],
    });
  }

  /**
   * The constituent answered: a case waiting for them is open again, and so is a resolved case within its
   * type's reopen window. Either way the timeline says why.
   */
  async constituentReplied(caseId: string): Promise<void> {
    const c = await this.d.cases.findById(caseId);
    if (!c) return;
    if (c.status === 'resolved') {
      const type = c.caseTypeId ? await this.d.caseTypes.get(c.agencyId, c.caseTypeId) : undefined;
      const windowMs = (type?.reopenDays ?? 14) * 86_400_000;
      if (!c.resolvedAt || this.now().getTime() - new Date(c.resolvedAt).getTime() > windowMs) return;
    } else if (c.status !== 'awaiting_info') {
      return;
    }
    const updated = await this.d.db.transaction(async (tx) => {
      const row = await this.d.cases.update(tx, c.id, c.version, { status: 'open', awaitingRequest: null });
      if (!row) return undefined;
      await this.clocksFollowStatus(tx, row, c.status);
      await this.d.cases.addEvent(tx, {
        caseId: c.id,
        kind: 'case.status_changed',
        actorKind: 'constituent',
        data: { from: c.status, to: 'open', reason: 'constituent_replied' },
      });
      return row;
    });
    if (updated) this.announce(updated);
  }

  /** Resolved cases nobody answered within the reopen window close; returns how many did. */
  async closeExpired(): Promise<number> {
    let closed = 0;
    for (const c of await this.d.cases.resolvedBefore(this.now().toISOString())) {
      const row = await this.d.db.transaction(async (tx) => {
        const r = await this.d.cases.update(tx, c.id, c.version, { status: 'closed' });
        if (!r) return undefined;
        await this.d.cases.addEvent(tx, {
          caseId: c.id,
          kind: 'case.status_changed',
          actorKind: 'system',
          data: { from: 'resolved', to: 'closed', reason: 'reopen_window_passed' },
        });
        return r;
      });
      if (row) {
        closed++;
        this.announce(row);
      }
    }
    return closed;
  }

  /** A case just made (by a chat, the portal or by hand): its playbook and SLA clocks start. */
  async started(tx: Tx, row: CaseRow, opts: { firstResponseMet?: boolean } = {}): Promise<void> {
    if (!row.caseTypeId) return;
    const type = await this.d.caseTypes.get(row.agencyId, row.caseTypeId, tx);
    if (!type) return;
    await this.d.tasks.instantiate(tx, row.id, type.playbook);
    await this.d.sla.apply(tx, row, type, opts);
  }

  /** An agent answered the constituent in public: the first-response clock stops. */
  async agentReplied(caseId: string): Promise<void> {
    if (!(await this.d.sla.met(this.d.db, caseId, 'first_response'))) return;
    const c = await this.d.cases.findById(caseId);
    if (c) this.announce(c);
  }

  /** My open cases and the tasks waiting for me or my groups. */
  async myWork(p: StaffPrincipal): Promise<MyWork> {
    const [mine, tasks] = await Promise.all([this.d.cases.openAssignedTo(p.userId), this.d.cases.openTasksFor(p.userId, p.groupIds)]);
    return {
      cases: mine.map(({ kase: c, slaDueAt, slaBreached }) => ({
        id: c.id,
        reference: c.reference,
        title: c.title,
        status: c.status,
        stage: c.stage,
        priority: c.priority,
        slaDueAt: slaDueAt ? toIso(slaDueAt) : null,
        slaBreached: Boolean(slaBreached),
        updatedAt: toIso(c.updatedAt),
      })),
      tasks: tasks.map(({ task: t, reference }) => ({
        id: t.id,
        caseId: t.caseId,
        reference,
        title: t.title,
        dueAt: t.dueAt ? toIso(t.dueAt) : null,
        forGroup: t.assigneeId === null,
      })),
    };
  }

  // ---- tasks ----------------------------------------------------------------------------------------

  /** Adds a task by hand, optionally for a colleague or a group and with a due date. */
  async addTask(
    p: StaffPrincipal,
    caseId: string,
    input: { title: string; instructions: string; assigneeId: string | null; groupId: string | null; dueAt: string | null },
  ): Promise<CaseDetail> {
    const c = await this.workable(p, caseId);
    if (input.groupId && !(await this.d.agencies.findGroup(p.agencyId, input.groupId))) throw issue('groupId', 'No such group');
    if (input.assigneeId && !(await this.d.staffInAgency(p.agencyId, input.assigneeId))) {
      throw issue('assigneeId', 'No such colleague');
    }
    await this.d.db.transaction(async (tx) => {
      const task = await this.d.tasks.create(tx, { caseId: c.id, ...input, createdBy: p.userId });
      await this.d.cases.addEvent(tx, {
        caseId: c.id,
        kind: 'task.added',
        actorKind: 'agent',
        actorUserId: p.userId,
        data: { taskId: task.id, title: task.title, assigneeId: task.assigneeId, dueAt: task.dueAt },
      });
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, action: 'task.add', objectType: 'case', objectId: c.id, outcome: 'success', detail: { taskId: task.id } },
        tx,
      );
    });
    this.announce(c);
    return this.detail(p, caseId);
  }

  /**
   * Marks a task done (doing its action first: a message, a document request, a field, a follow-up) or
   * not done. Doing it twice changes nothing the second time.
   */
  async setTaskDone(p: StaffPrincipal, caseId: string, taskId: string, done: boolean): Promise<CaseDetail> {
    const c = await this.workable(p, caseId);
    const task = await this.d.tasks.find(c.id, taskId);
    if (!task) throw new AppError('NOT_FOUND', 'Task not found');
    if (done && !task.doneAt && task.action) await this.runAction(p, c, task.action);
    const changed = await this.d.db.transaction(async (tx) => {
      const row = await this.d.tasks.setDone(tx, task.id, p.userId, done);
      if (!row) return false;
      await this.d.cases.addEvent(tx, {
        caseId: c.id,
        kind: done ? 'task.done' : 'task.reopened',
        actorKind: 'agent',
        actorUserId: p.userId,
        data: { taskId: task.id, title: task.title },
      });
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, action: done ? 'task.done' : 'task.reopen', objectType: 'case', objectId: c.id, outcome: 'success', detail: { taskId: task.id } },
        tx,
      );
      return true;
    });
    if (changed) this.announce((await this.d.cases.findById(c.id)) ?? c);
    return this.detail(p, caseId);
  }

  private async runAction(p: StaffPrincipal, c: CaseRow, action: NonNullable<TaskRow['action']>): Promise<void> {
    switch (action.kind) {
      case 'send_message': {
        const who = c.constituentId ? await this.d.cases.constituentOf(c) : undefined;
        const name = who?.person.displayName ?? '';
        await this.tell(c, () => action.body.replaceAll('{name}', name).trim()); // the agency's own words
        return;
      }
      case 'request_document': {
        if (c.status === 'awaiting_info') return;
        await this.update(p, c.id, { version: c.version, status: 'awaiting_info', request: action.request });
        return;
      }
      case 'set_field': {
        await this.update(p, c.id, { version: c.version, fields: { [action.fieldKey]: action.value } });
        return;
      }
      case 'follow_up': {
        const due = new Date(this.now().getTime() + action.dueInDays * 86_400_000).toISOString();
        await this.addTask(p, c.id, { title: action.title, instructions: '', assigneeId: p.userId, groupId: null, dueAt: due });
        return;
      }
    }
  }

  /** Tells staff a case changed (or appeared) that was written outside this service. */
  announceCase(c: CaseRow): void {
    this.announce(c);
  }

  private announce(c: CaseRow): void {
    this.d.notifier.caseUpdated(c, { caseId: c.id, status: c.status, priority: c.priority, tags: c.tags, version: c.version });
  }

  /** Opens a case by hand, assigned to the agent who opens it, for a new or known constituent. */
  async create(p: StaffPrincipal, input: z.output<typeof CaseCreateInput>): Promise<CaseDetail> {
    if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins can read cases but not work them');
    const agency = await this.d.agencies.findById(p.agencyId);
    if (!agency) throw new AppError('NOT_FOUND', 'Agency not found');
    const type = input.caseTypeId ? await this.d.caseTypes.get(p.agencyId, input.caseTypeId) : undefined;
    if (input.caseTypeId && !type) throw issue('caseTypeId', 'No such case type');
    if (input.groupId && !(await this.d.agencies.findGroup(p.agencyId, input.groupId))) throw issue('groupId', 'No such group');
    const groupId = input.groupId ?? type?.defaultGroupId ?? (await this.d.agencies.defaultGroupId(p.agencyId)) ?? null;
    if (input.fields) {
      if (!type) throw issue('fields', 'Choose a case type before filling in its fields');
      const problems = validateFields(type.fields, input.fields, { partial: true });
      if (problems.length) throw new AppError('INVALID_PAYLOAD', problems[0]!.message, { issues: problems });
    }
    const year = (this.d.now?.() ?? new Date()).getUTCFullYear();
    const prefix = type?.prefix ?? agency.casePrefix;
    const reserved = await this.d.cases.reserveReference(p.agencyId, prefix, year);
    const created = await this.d.db.transaction(async (tx) => {
      const constituentId = input.constituent ? await this.d.constituents.findOrCreate(tx, p.agencyId, input.constituent) : null;
      const reference = reserved ?? (await this.d.cases.nextReference(tx, p.agencyId, prefix, year));
      const row = await this.d.cases.createManual(tx, {
        agencyId: p.agencyId,
        reference,
        title: input.title,
        constituentId,
        groupId,
        assigneeId: p.userId,
        caseTypeId: type?.id ?? null,
        priority: input.priority ?? type?.defaultPriority ?? 'normal',
        customFields: input.fields ?? {},
      });
      await this.d.cases.addEvent(tx, { caseId: row.id, kind: 'case.created', actorKind: 'agent', actorUserId: p.userId });
      // Opened by the agent who is helping the person: the first response has happened.
      await this.started(tx, row, { firstResponseMet: true });
      await this.d.audit.record(
        {
          agencyId: p.agencyId,
          actorKind: 'staff',
          actorId: p.userId,
          action: 'case.create',
          objectType: 'case',
          objectId: row.id,
          outcome: 'success',
        },
        tx,
      );
      return row;
    });
    this.announce(created);
    return this.detail(p, created.id);
  }

  /** A link concerns both cases: each timeline names the other. */
  private async recordBothSides(tx: Tx, p: StaffPrincipal, kind: string, a: CaseRow, b: CaseRow): Promise<void> {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      await this.d.cases.addEvent(tx, { caseId: from.id, kind, actorKind: 'agent', actorUserId: p.userId, data: { reference: to.reference } });
    }
  }

  /**
   * Merges this case (a duplicate) into another: its conversations and timeline move to the survivor, which
   * gets its tags and a link; the duplicate closes and points to the survivor. Both timelines say so.
   */
  async merge(p: StaffPrincipal, caseId: string, reference: string): Promise<CaseDetail> {
    const dup = await this.workable(p, caseId);
    const survivor = await this.d.cases.findByReference(p.agencyId, reference);
    if (!survivor || !canSee(p, survivor)) throw invalidRef(`No case ${reference} that you can see`);
    if (survivor.id === dup.id) throw invalidRef('A case cannot be merged into itself');
    if (dup.mergedIntoId) throw new AppError('CONFLICT', 'This case was already merged');
    if (survivor.mergedIntoId) throw invalidRef(`${survivor.reference} was itself merged into another case`);
    if (survivor.status === 'closed' || survivor.status === 'cancelled') throw invalidRef(`${survivor.reference} is closed`);
    const done = await this.d.db.transaction(async (tx) => {
      const closed = await this.d.cases.merge(tx, dup, survivor);
      if (!closed) return undefined;
      await this.d.sla.met(tx, dup.id, 'first_response');
      await this.d.sla.met(tx, dup.id, 'resolution');
      await this.d.cases.link(tx, dup.id, survivor.id, p.userId);
      await this.d.cases.addEvent(tx, { caseId: survivor.id, kind: 'case.merged_from', actorKind: 'agent', actorUserId: p.userId, data: { reference: dup.reference } });
      await this.d.cases.addEvent(tx, { caseId: dup.id, kind: 'case.merged_into', actorKind: 'agent', actorUserId: p.userId, data: { reference: survivor.reference } });
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, action: 'case.merge', objectType: 'case', objectId: dup.id, outcome: 'success', detail: { into: survivor.id } },
        tx,
      );
      return closed;
    });
    if (!done) throw new AppError('CONFLICT', 'Someone else changed this case. Reload it and try again.');
    this.announce(done);
    this.announce((await this.d.cases.findById(survivor.id)) ?? survivor);
    return this.detail(p, survivor.id);
  }

  /** Links two cases of the agency that the agent can both see; linking twice is harmless. */
  async link(p: StaffPrincipal, caseId: string, reference: string): Promise<CaseDetail> {
    const c = await this.workable(p, caseId);
    const other = await this.d.cases.findByReference(p.agencyId, reference);
    if (!other || !canSee(p, other)) throw invalidRef(`No case ${reference} that you can see`);
    if (other.id === c.id) throw invalidRef('A case cannot be linked to itself');
    await this.d.db.transaction(async (tx) => {
      if (await this.d.cases.link(tx, c.id, other.id, p.userId)) await this.recordBothSides(tx, p, 'case.linked', c, other);
    });
    this.announce(c);
    this.announce(other);
    return this.detail(p, caseId);
  }

  async unlink(p: StaffPrincipal, caseId: string, otherId: string): Promise<CaseDetail> {
    const c = await this.workable(p, caseId);
    const other = await this.d.cases.findById(otherId);
    if (!other || other.agencyId !== p.agencyId) throw new AppError('NOT_FOUND', 'Case not found');
    await this.d.db.transaction(async (tx) => {
      if (await this.d.cases.unlink(tx, c.id, other.id)) await this.recordBothSides(tx, p, 'case.unlinked', c, other);
    });
    this.announce(c);
    this.announce(other);
    return this.detail(p, caseId);
  }
}

function issue(field: string, message: string): AppError {
  return new AppError('INVALID_PAYLOAD', message, { issues: [{ path: [field], message }] });
}

function invalidRef(message: string): AppError {
  return new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['reference'], message }] });
}

function label(s: CaseStatus): string {
  return s.replace('_', ' ');
}
