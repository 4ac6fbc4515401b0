import {
  DEFAULT_TRANSITIONS,
  type CaseStatus,
  type CaseType,
  type PlaybookTask,
  type Priority,
  type SlaPolicy,
  type Stage,
} from '@casebridge/shared';

/** A playbook step as the editor holds it: every input is a string until it is saved. */
export type DraftStep = {
  key: string;
  stage: Stage;
  title: string;
  instructions: string;
  required: boolean;
  action: '' | 'send_message' | 'request_document' | 'set_field' | 'follow_up';
  /** The message, the document asked for, or the follow-up title. */
  text: string;
  fieldKey: string;
  value: string;
  days: string;
  existing: boolean;
};

/** Hours as typed (business hours), per priority; empty means no target. */
export type DraftSla = Record<Priority, { first: string; resolution: string }>;
export type DraftWorkflow = Record<CaseStatus, CaseStatus[]>;

export const PRIORITIES: Priority[] = ['low', 'normal', 'high', 'urgent'];

export function stepsOf(t: CaseType | null): DraftStep[] {
  return (t?.playbook ?? []).map((s) => ({
    key: s.key,
    stage: s.stage,
    title: s.title,
    instructions: s.instructions,
    required: s.required,
    action: s.action?.kind ?? '',
    text: s.action?.kind === 'send_message' ? s.action.body : s.action?.kind === 'request_document' ? s.action.request : s.action?.kind === 'follow_up' ? s.action.title : '',
    fieldKey: s.action?.kind === 'set_field' ? s.action.fieldKey : '',
    value: s.action?.kind === 'set_field' ? String(s.action.value) : '',
    days: s.action?.kind === 'follow_up' ? String(s.action.dueInDays) : '7',
    existing: true,
  }));
}

export function playbookOf(steps: DraftStep[]): PlaybookTask[] {
  return steps.map((s) => {
    const base = { key: s.key.trim(), stage: s.stage, title: s.title.trim(), instructions: s.instructions.trim(), required: s.required };
    switch (s.action) {
      case 'send_message':
        return { ...base, action: { kind: 'send_message', body: s.text } };
      case 'request_document':
        return { ...base, action: { kind: 'request_document', request: s.text } };
      case 'follow_up':
        return { ...base, action: { kind: 'follow_up', title: s.text, dueInDays: Number(s.days) } };
      case 'set_field': {
        // Numbers and yes/no go as such; the server checks the value against the field.
        const v = String(s.value ?? '').trim();
        const value = v === 'true' ? true : v === 'false' ? false : v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
        return { ...base, action: { kind: 'set_field', fieldKey: s.fieldKey, value } };
      }
      default:
        return base;
    }
  });
}

const hours = (minutes: number | undefined) => (minutes === undefined ? '' : String(Math.round((minutes / 60) * 100) / 100));

export function slaOf(t: CaseType | null): DraftSla {
  return Object.fromEntries(
    PRIORITIES.map((p) => [p, { first: hours(t?.sla?.[p]?.firstResponseMinutes), resolution: hours(t?.sla?.[p]?.resolutionMinutes) }]),
  ) as DraftSla;
}

/** Only priorities with both targets filled in get an SLA; none at all means no SLA. */
export function slaPolicyOf(d: DraftSla): SlaPolicy | null {
  const out: SlaPolicy = {};
  for (const p of PRIORITIES) {
    // Number inputs bind numbers (or null when cleared), text binds strings: read both the same way.
    const first = String(d[p].first ?? '').trim();
    const resolution = String(d[p].resolution ?? '').trim();
    if (first === '' && resolution === '') continue;
    out[p] = { firstResponseMinutes: Math.round(Number(first) * 60), resolutionMinutes: Math.round(Number(resolution) * 60) };
  }
  return Object.keys(out).length ? out : null;
}

export function workflowOf(t: CaseType | null): DraftWorkflow {
  return structuredClone({ ...DEFAULT_TRANSITIONS, ...(t?.transitions ?? {}) }) as DraftWorkflow;
}
