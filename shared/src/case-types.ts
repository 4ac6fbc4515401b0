import { z } from 'zod';
import { BusinessHours, CaseStatus, Channel, Id, Language, Priority } from './schemas.js';

// ---- custom fields --------------------------------------------------------------------------------

export const FieldType = z.enum(['text', 'long_text', 'number', 'date', 'select', 'multi_select', 'yes_no', 'address', 'file']);
export type FieldType = z.infer<typeof FieldType>;

/** Text in both languages the widget and portal speak; Spanish falls back to English when missing. */
export const LocalText = z.object({ en: z.string().trim().min(1).max(300), es: z.string().trim().max(300).optional() });
export type LocalText = z.infer<typeof LocalText>;

/** One custom field of a case type. `key` never changes once a case may hold a value for it. */
export const FieldDef = z
  .strictObject({
    key: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,39}$/, 'Field keys are lower case letters, digits and _, starting with a letter'),
    label: LocalText,
    type: FieldType,
    required: z.boolean().default(false),
    /** For select and multi_select. */
    options: z.array(z.string().trim().min(1).max(100)).max(50).optional(),
    /** Text: longest length; number: bounds. */
    maxLength: z.number().int().min(1).max(10_000).optional(),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .superRefine((f, ctx) => {
    if ((f.type === 'select' || f.type === 'multi_select') && !f.options?.length) {
      ctx.addIssue({ code: 'custom', path: ['options'], message: 'A select field needs options' });
    }
  });
export type FieldDef = z.infer<typeof FieldDef>;

export type FieldValue = string | number | boolean | string[] | null;
export type FieldIssue = { path: (string | number)[]; message: string };

/**
 * Checks custom field values against a case type's fields. Unknown keys are refused; `partial` allows a
 * write that sets only some fields (required ones are then checked against the merged result by the caller).
 */
export function validateFields(
  defs: FieldDef[],
  values: Record<string, unknown>,
  opts: { partial?: boolean } = {},
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const byKey = new Map(defs.map((d) => [d.key, d]));
  for (const key of Object.keys(values)) {
    if (!byKey.has(key)) issues.push({ path: ['fields', key], message: `Unknown field “${key}”` });
  }
  for (const def of defs) {
    const v = values[def.key];
    const at = ['fields', def.key];
    const name = def.label.en;
    const empty = v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
    if (empty) {
      if (def.required && !opts.partial) issues.push({ path: at, message: `${name} is required` });
      continue;
    }
    const bad = (message: string) => issues.push({ path: at, message });
    switch (def.type) {
      case 'text':
      case 'long_text':
      case 'address':
      case 'file': {
        if (typeof v !== 'string') bad(`${name} must be text`);
        else if (v.length > (def.maxLength ?? (def.type === 'long_text' ? 4000 : 500))) bad(`${name} is too long`);
        break;
      }
      case 'number': {
        if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${name} must be a number`);
        else if (def.min !== undefined && v < def.min) bad(`${name} must be at least ${def.min}`);
        else if (def.max !== undefined && v > def.max) bad(`${name} must be at most ${def.max}`);
        break;
      }
      case 'date': {
        if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`))) {
          bad(`${name} must be a date (YYYY-MM-DD)`);
        }
        break;
      }
      case 'select': {
        if (typeof v !== 'string' || !def.options?.includes(v)) bad(`${name} must be one of: ${def.options?.join(', ')}`);
        break;
      }
      case 'multi_select': {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !def.options?.includes(x))) {
          bad(`${name} must be chosen from: ${def.options?.join(', ')}`);
        }
        break;
      }
      case 'yes_no': {
        if (typeof v !== 'boolean') bad(`${name} must be yes or no`);
        break;
      }
    }
  }
  return issues;
}

// ---- workflow stages, playbooks and SLAs -----------------------------------------------------------

/** Where a case is in its life, beside its status: Intake → Review → Process → Decision. */
export const Stage = z.enum(['intake', 'review', 'process', 'decision']);
export type Stage = z.infer<typeof Stage>;
export const STAGES = Stage.options;

const TaskKey = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'Task keys are lower case letters, digits and _, starting with a letter');

/** What completing a playbook task does for the agent. */
export const PlaybookAction = z.discriminatedUnion('kind', [
  /** Sends this message to the constituent ({name} becomes their name). */
  z.strictObject({ kind: z.literal('send_message'), body: z.string().trim().min(1).max(2000) }),
  /** Moves the case to Awaiting info asking for this document. */
  z.strictObject({ kind: z.literal('request_document'), request: z.string().trim().min(1).max(1000) }),
  /** Sets a custom field to a value (checked against the case type). */
  z.strictObject({ kind: z.literal('set_field'), fieldKey: z.string().min(1), value: z.union([z.string(), z.number(), z.boolean()]) }),
  /** Adds a follow-up task due this many days later. */
  z.strictObject({ kind: z.literal('follow_up'), title: z.string().trim().min(1).max(200), dueInDays: z.number().int().min(0).max(365) }),
]);
export type PlaybookAction = z.infer<typeof PlaybookAction>;

/** One step of a case type's playbook. Required steps must be done before the case leaves their stage. */
export const PlaybookTask = z.strictObject({
  key: TaskKey,
  stage: Stage,
  title: z.string().trim().min(1, 'A task needs a title').max(200),
  instructions: z.string().trim().max(2000).default(''),
  required: z.boolean().default(false),
  action: PlaybookAction.optional(),
});
export type PlaybookTask = z.infer<typeof PlaybookTask>;

/** Business minutes to first response and to resolution, per priority. */
export const SlaTarget = z.strictObject({
  firstResponseMinutes: z.number().int().min(1).max(525_600),
  resolutionMinutes: z.number().int().min(1).max(5_256_000),
});
export const SlaPolicy = z.partialRecord(Priority, SlaTarget);
export type SlaPolicy = z.infer<typeof SlaPolicy>;

/** The agency's working calendar: SLA clocks run only in its hours, never on its holidays. */
export const AgencyCalendar = z.strictObject({
  /** Null: open around the clock. */
  businessHours: BusinessHours.nullable().refine(
    (h) => {
      if (!h) return true;
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: h.timezone });
        return true;
      } catch {
        return false;
      }
    },
    { message: 'Unknown time zone', path: ['timezone'] },
  ),
  holidays: z
    .array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'Holidays are dates (YYYY-MM-DD)'))
    .max(200)
    .default([]),
});
export type AgencyCalendar = z.infer<typeof AgencyCalendar>;

// ---- case types -----------------------------------------------------------------------------------

export const CaseTypeInput = z.strictObject({
  name: z.string().trim().min(1, 'Name is required').max(100),
  /** Reference prefix, e.g. PRM → PRM-2026-000123. */
  prefix: z
    .string()
    .trim()
    .toUpperCase()
    .regex(/^[A-Z]{2,6}$/, 'The prefix is 2 to 6 letters'),
  fields: z.array(FieldDef).max(60).default([]),
  defaultGroupId: Id.nullable().default(null),
  defaultPriority: Priority.default('normal'),
  /** Days a closed case is kept (enforced by the retention work). */
  retentionDays: z.number().int().min(1).max(36_500).default(2555),
  /** Allowed status transitions; the shipped default when absent. */
  transitions: z.record(CaseStatus, z.array(CaseStatus)).optional(),
  playbook: z.array(PlaybookTask).max(40).default([]),
  sla: SlaPolicy.nullable().default(null),
  /** Days after resolution during which a constituent's reply reopens the case; then it closes. */
  reopenDays: z.number().int().min(0).max(365).default(14),
});
export type CaseTypeInput = z.input<typeof CaseTypeInput>;

export const CaseType = z.object({
  id: Id,
  name: z.string(),
  prefix: z.string(),
  fields: z.array(FieldDef),
  defaultGroupId: Id.nullable(),
  defaultPriority: Priority,
  retentionDays: z.number().int(),
  transitions: z.record(CaseStatus, z.array(CaseStatus)).nullable(),
  playbook: z.array(PlaybookTask),
  sla: SlaPolicy.nullable(),
  reopenDays: z.number().int(),
  /** Bumped on every change; a case records the version it was last validated against. */
  version: z.number().int(),
});
export type CaseType = z.infer<typeof CaseType>;

// ---- service catalog ------------------------------------------------------------------------------

export const ServiceDefinitionInput = z.strictObject({
  title: LocalText,
  description: LocalText,
  category: z.string().trim().min(1).max(60),
  keywords: z.array(z.string().trim().min(1).max(40)).max(20).default([]),
  caseTypeId: Id,
  /** Up-front questions, each filling one field of the case type. */
  questions: z.array(z.strictObject({ fieldKey: z.string(), prompt: LocalText })).max(10).default([]),
  channels: z.array(Channel).min(1).default(['web', 'portal']),
  languages: z.array(Language).min(1).default(['en', 'es']),
  published: z.boolean().default(true),
});
export type ServiceDefinitionInput = z.input<typeof ServiceDefinitionInput>;

export const ServiceDefinition = z.object({
  id: Id,
  title: LocalText,
  description: LocalText,
  category: z.string(),
  keywords: z.array(z.string()),
  caseTypeId: Id,
  questions: z.array(z.object({ fieldKey: z.string(), prompt: LocalText })),
  channels: z.array(Channel),
  languages: z.array(Language),
  published: z.boolean(),
});
export type ServiceDefinition = z.infer<typeof ServiceDefinition>;

/** A question asked up front, in the visitor's language, with what its field accepts. */
export const ServiceQuestion = z.object({
  fieldKey: z.string(),
  prompt: z.string(),
  type: FieldType,
  required: z.boolean(),
  options: z.array(z.string()).optional(),
});
export type ServiceQuestion = z.infer<typeof ServiceQuestion>;

/** What the widget and the portal show of a service: in the visitor's language, with its up-front questions. */
export const PublicService = z.object({
  id: Id,
  title: z.string(),
  description: z.string(),
  category: z.string(),
  questions: z.array(ServiceQuestion),
});
export type PublicService = z.infer<typeof PublicService>;
