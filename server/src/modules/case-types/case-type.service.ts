import {
  CaseTypeInput,
  ServiceDefinitionInput,
  type CaseType,
  type FieldDef,
  type Language,
  type PublicService,
  type ServiceDefinition,
  validateFields,
} from '@casebridge/shared';
import type { z } from 'zod';
import { pgConstraint, pgErrorCode, type Tx } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';
import type { CaseTypeRepository, CaseTypeRow, ServiceRow } from './case-type.repository.js';

type CaseTypeValues = z.output<typeof CaseTypeInput>;

function invalid(path: (string | number)[], message: string): AppError {
  return new AppError('INVALID_PAYLOAD', message, { issues: [{ path, message }] });
}

function assertAdmin(p: StaffPrincipal): void {
  if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins configure case types and services');
}

export function toCaseType(r: CaseTypeRow): CaseType {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    fields: r.fields,
    defaultGroupId: r.defaultGroupId,
    defaultPriority: r.defaultPriority,
    retentionDays: r.retentionDays,
    transitions: (r.transitions as CaseType['transitions']) ?? null,
    playbook: r.playbook,
    sla: r.sla ?? null,
    reopenDays: r.reopenDays,
    version: r.version,
  };
}

function toService(r: ServiceRow): ServiceDefinition {
  return {
    id: r.id,
    title: r.title,
    description: r.description,
    category: r.category,
    keywords: r.keywords,
    caseTypeId: r.caseTypeId,
    questions: r.questions,
    channels: r.channels as ServiceDefinition['channels'],
    languages: r.languages as ServiceDefinition['languages'],
    published: r.published,
  };
}

/**
 * Changing a case type must never break a case that already exists: fields may be added, relabelled, made
 * optional or given more options; they may not be removed, retyped, made required, or lose options.
 */
function assertAdditive(before: FieldDef[], after: FieldDef[]): void {
  const next = new Map(after.map((f) => [f.key, f]));
  before.forEach((old) => {
    const at = ['fields', after.findIndex((f) => f.key === old.key)];
    const f = next.get(old.key);
    if (!f) throw invalid(['fields'], `Field “${old.key}” cannot be removed: existing cases may hold it`);
    if (f.type !== old.type) throw invalid([...at, 'type'], `Field “${old.key}” cannot change type`);
    if (f.required && !old.required) throw invalid([...at, 'required'], `Field “${old.key}” cannot become required`);
    const lost = (old.options ?? []).filter((o) => !(f.options ?? []).includes(o));
    if (lost.length) throw invalid([...at, 'options'], `Field “${old.key}” cannot lose options (${lost.join(', ')})`);
  });
}

function assertUniqueKeys(fields: FieldDef[]): void {
  const seen = new Set<string>();
  fields.forEach((f, i) => {
    if (seen.has(f.key)) throw invalid(['fields', i, 'key'], `Two fields share the key “${f.key}”`);
    seen.add(f.key);
  });
}

/** Playbook steps have unique keys, and a "set field" step names a field of the type with a valid value. */
function assertPlaybook(input: CaseTypeValues): void {
  const seen = new Set<string>();
  input.playbook.forEach((t, i) => {
    if (seen.has(t.key)) throw invalid(['playbook', i, 'key'], `Two playbook tasks share the key “${t.key}”`);
    seen.add(t.key);
    if (t.action?.kind === 'set_field') {
      const { fieldKey, value } = t.action;
      const def = input.fields.find((f) => f.key === fieldKey);
      if (!def) throw invalid(['playbook', i, 'action', 'fieldKey'], `The case type has no field “${fieldKey}”`);
      const problem = validateFields([def], { [fieldKey]: value }, { partial: true })[0];
      if (problem) throw invalid(['playbook', i, 'action', 'value'], problem.message);
    }
  });
}

export class CaseTypeService {
  constructor(
    private readonly d: { caseTypes: CaseTypeRepository; agencies: AgencyRepository; audit: AuditRepository },
  ) {}

  async list(p: StaffPrincipal): Promise<CaseType[]> {
    return (await this.d.caseTypes.list(p.agencyId)).map(toCaseType);
  }

  async get(agencyId: string, id: string, tx?: Tx): Promise<CaseTypeRow | undefined> {
    return this.d.caseTypes.find(agencyId, id, tx);
  }

  private async checkGroup(p: StaffPrincipal, groupId: string | null): Promise<void> {
    if (groupId && !(await this.d.agencies.findGroup(p.agencyId, groupId))) throw invalid(['defaultGroupId'], 'No such group');
  }

  private uniqueness(err: unknown): never {
    if (pgErrorCode(err) === '23505') {
      const field = pgConstraint(err) === 'case_types_prefix_uq' ? 'prefix' : 'name';
      throw invalid([field], `Another case type already uses this ${field}`);
    }
    throw err;
  }

  async create(p: StaffPrincipal, input: CaseTypeValues): Promise<CaseType> {
    assertAdmin(p);
    assertUniqueKeys(input.fields);
    assertPlaybook(input);
    await this.checkGroup(p, input.defaultGroupId);
    const row = await this.d.caseTypes
      .create({ agencyId: p.agencyId, ...input, transitions: input.transitions ?? null })
      .catch((err) => this.uniqueness(err));
    await this.audit(p, 'case_type.create', row.id);
    return toCaseType(row);
  }

  async update(p: StaffPrincipal, id: string, version: number, input: CaseTypeValues): Promise<CaseType> {
    assertAdmin(p);
    const current = await this.d.caseTypes.find(p.agencyId, id);
    if (!current) throw new AppError('NOT_FOUND', 'Case type not found');
    const stale = new AppError('CONFLICT', 'Someone else changed this case type. Reload it and try again.');
    if (current.version !== version) throw stale;
    assertUniqueKeys(input.fields);
    assertAdditive(current.fields, input.fields);
    assertPlaybook(input);
    if (input.prefix !== current.prefix) throw invalid(['prefix'], 'The reference prefix cannot change: references are never reused');
    await this.checkGroup(p, input.defaultGroupId);
    const row = await this.d.caseTypes
      .update(id, version, { ...input, transitions: input.transitions ?? null })
      .catch((err) => this.uniqueness(err));
    if (!row) throw stale;
    await this.audit(p, 'case_type.update', id);
    return toCaseType(row);
  }

  async listServices(p: StaffPrincipal): Promise<ServiceDefinition[]> {
    return (await this.d.caseTypes.listServices(p.agencyId)).map(toService);
  }

  /** The published catalog for one channel, in the constituent's language (Spanish falls back to English). */
  async publicCatalog(agencyId: string, channel: 'web' | 'portal', lang: Language): Promise<PublicService[]> {
    const [rows, types] = await Promise.all([this.d.caseTypes.listServices(agencyId), this.d.caseTypes.list(agencyId)]);
    const fieldsOf = new Map(types.map((t) => [t.id, t.fields]));
    return rows
      .filter((r) => r.published && r.channels.includes(channel))
      .map((r) => ({
        id: r.id,
        title: (lang === 'es' && r.title.es) || r.title.en,
        description: (lang === 'es' && r.description.es) || r.description.en,
        category: r.category,
        questions: r.questions.flatMap((q) => {
          const f = fieldsOf.get(r.caseTypeId)?.find((x) => x.key === q.fieldKey);
          if (!f) return [];
          return [
            {
              fieldKey: f.key,
              prompt: (lang === 'es' && q.prompt.es) || q.prompt.en,
              type: f.type,
              required: f.required,
              ...(f.options ? { options: f.options } : {}),
            },
          ];
        }),
      }));
  }

  /**
   * A constituent's answers to a service's up-front questions, checked against the fields they fill: the
   * custom field values the new case starts with. Errors name `answers.<field>`. `partial` (a chat, where the
   * agent can ask for the rest) lets required answers be missing.
   */
  async answersFor(
    agencyId: string,
    service: ServiceRow,
    answers: Record<string, unknown>,
    opts: { partial?: boolean } = {},
  ): Promise<Record<string, unknown>> {
    const type = await this.d.caseTypes.find(agencyId, service.caseTypeId);
    const asked = new Set(service.questions.map((q) => q.fieldKey));
    const stray = Object.keys(answers).find((k) => !asked.has(k));
    if (stray) throw invalid(['answers', stray], `Unknown question “${stray}”`);
    const given = Object.fromEntries(Object.entries(answers).filter(([, v]) => v !== '' && v !== null && v !== undefined));
    const problems = validateFields((type?.fields ?? []).filter((f) => asked.has(f.key)), given, opts).map((i) => ({
      path: ['answers', ...i.path.slice(1)],
      message: i.message,
    }));
    if (problems.length) throw new AppError('INVALID_PAYLOAD', problems[0]!.message, { issues: problems });
    return given;
  }

  async findPublished(agencyId: string, id: string, channel: 'web' | 'portal'): Promise<ServiceRow | undefined> {
    const row = await this.d.caseTypes.findService(agencyId, id);
    return row && row.published && row.channels.includes(channel) ? row : undefined;
  }

  /** A service creates cases of one type; its questions fill that type's fields, each at most once. */
  private async checkService(p: StaffPrincipal, input: z.output<typeof ServiceDefinitionInput>): Promise<void> {
    const type = await this.d.caseTypes.find(p.agencyId, input.caseTypeId);
    if (!type) throw invalid(['caseTypeId'], 'No such case type');
    const seen = new Set<string>();
    input.questions.forEach((q, i) => {
      if (!type.fields.some((f) => f.key === q.fieldKey)) {
        throw invalid(['questions', i, 'fieldKey'], `The case type has no field “${q.fieldKey}”`);
      }
      if (seen.has(q.fieldKey)) throw invalid(['questions', i, 'fieldKey'], `Two questions fill “${q.fieldKey}”`);
      seen.add(q.fieldKey);
    });
  }

  async updateService(p: StaffPrincipal, id: string, input: z.output<typeof ServiceDefinitionInput>): Promise<ServiceDefinition> {
    assertAdmin(p);
    if (!(await this.d.caseTypes.findService(p.agencyId, id))) throw new AppError('NOT_FOUND', 'Service not found');
    await this.checkService(p, input);
    const row = await this.d.caseTypes.updateService(id, input);
    await this.audit(p, 'service.update', id);
    return toService(row);
  }

  async createService(p: StaffPrincipal, input: z.output<typeof ServiceDefinitionInput>): Promise<ServiceDefinition> {
    assertAdmin(p);
    await this.checkService(p, input);
    const row = await this.d.caseTypes.createService({ agencyId: p.agencyId, ...input });
    await this.audit(p, 'service.create', row.id);
    return toService(row);
  }

  private async audit(p: StaffPrincipal, action: string, objectId: string): Promise<void> {
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action,
      objectType: action.split('.')[0],
      objectId,
      outcome: 'success',
    });
  }
}
