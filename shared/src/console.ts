import { z } from 'zod';
import { Channel, ConversationSummary, Email, Id, Priority, CaseStatus, Role } from './schemas.js';
import { FieldDef, PlaybookAction, Stage } from './case-types.js';

// ---- inbox ---------------------------------------------------------------------------------------

/**
 * The console's inbox views. `mine`: open conversations assigned to me; `queue`: waiting in my groups'
 * queues, first in line first; `open`: every open conversation I may see; `closed`: ended in the last 7 days.
 */
export const InboxView = z.enum(['mine', 'queue', 'open', 'closed']);
export type InboxView = z.infer<typeof InboxView>;

/** A case label: lower case letters, digits, spaces, `-` and `_`. */
export const Tag = z
  .string()
  .trim()
  .toLowerCase()
  .min(1, 'A tag cannot be empty')
  .max(40, 'A tag can be at most 40 characters')
  .regex(/^[\p{L}\p{N} _-]+$/u, 'Tags use letters, digits, spaces, - and _ only');

export const InboxQuery = z.object({
  view: InboxView.default('open'),
  tag: Tag.optional(),
  channel: Channel.optional(),
  priority: Priority.optional(),
  groupId: Id.optional(),
  caseTypeId: Id.optional(),
  /** Name, email, phone, case reference or message text. */
  q: z.string().trim().max(200).optional(),
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export type InboxQuery = z.input<typeof InboxQuery>;

export const InboxPage = z.object({
  conversations: z.array(ConversationSummary),
  nextCursor: z.string().nullable(),
});
export type InboxPage = z.infer<typeof InboxPage>;

export const InboxCounts = z.object({ mine: z.number(), queue: z.number(), open: z.number(), closed: z.number() });
export type InboxCounts = z.infer<typeof InboxCounts>;

// ---- staff and presence --------------------------------------------------------------------------

export const Presence = z.enum(['available', 'away', 'offline']);
export type Presence = z.infer<typeof Presence>;

export const PresenceInput = z.strictObject({ presence: Presence });
export type PresenceInput = z.infer<typeof PresenceInput>;

/** A colleague as the console shows them: who is there, and how busy. */
export const StaffMember = z.object({
  id: Id,
  displayName: z.string(),
  role: Role,
  presence: Presence,
  /** Most conversations they take at once. */
  capacity: z.number().int(),
  /** Conversations assigned to them now. */
  activeCount: z.number().int(),
  groupIds: z.array(Id),
});
export type StaffMember = z.infer<typeof StaffMember>;

export const PresenceChanged = z.object({ userId: Id, presence: Presence });
export type PresenceChanged = z.infer<typeof PresenceChanged>;

// ---- transfer ------------------------------------------------------------------------------------

/** Hand a conversation to a colleague (it stays active, now theirs) or to a group's queue. */
export const TransferInput = z
  .strictObject({
    conversationId: Id,
    toUserId: Id.optional(),
    toGroupId: Id.optional(),
    note: z.string().trim().max(1000, 'Note is longer than 1000 characters').optional(),
  })
  .refine((t) => Boolean(t.toUserId) !== Boolean(t.toGroupId), {
    message: 'Choose a colleague or a group',
    path: ['toUserId'],
  });
export type TransferInput = z.input<typeof TransferInput>;

// ---- cases ---------------------------------------------------------------------------------------

/** One entry of a case timeline that is not a message: status changes, assignments, transfers, … */
export const CaseEvent = z.object({
  id: Id,
  kind: z.string(),
  actorKind: z.enum(['agent', 'constituent', 'system']),
  actorName: z.string().nullable(),
  conversationId: Id.nullable(),
  data: z.record(z.string(), z.unknown()),
  createdAt: z.iso.datetime({ offset: true }),
});
export type CaseEvent = z.infer<typeof CaseEvent>;

/** A task on a case: a playbook step, or one added by hand (with an owner and a due date). */
export const CaseTask = z.object({
  id: Id,
  /** Playbook step key; null for a task added by hand. */
  key: z.string().nullable(),
  stage: Stage.nullable(),
  title: z.string(),
  instructions: z.string(),
  required: z.boolean(),
  action: PlaybookAction.nullable(),
  assigneeId: Id.nullable(),
  assigneeName: z.string().nullable(),
  groupId: Id.nullable(),
  dueAt: z.iso.datetime({ offset: true }).nullable(),
  doneAt: z.iso.datetime({ offset: true }).nullable(),
  doneByName: z.string().nullable(),
});
export type CaseTask = z.infer<typeof CaseTask>;

/** One SLA clock of a case. */
export const SlaClock = z.object({
  metric: z.enum(['first_response', 'resolution']),
  targetMinutes: z.number().int(),
  dueAt: z.iso.datetime({ offset: true }),
  warnAt: z.iso.datetime({ offset: true }),
  /** Paused while the case waits for the constituent. */
  pausedAt: z.iso.datetime({ offset: true }).nullable(),
  metAt: z.iso.datetime({ offset: true }).nullable(),
  warnedAt: z.iso.datetime({ offset: true }).nullable(),
  breachedAt: z.iso.datetime({ offset: true }).nullable(),
});
export type SlaClock = z.infer<typeof SlaClock>;

export const CaseDetail = z.object({
  id: Id,
  reference: z.string(),
  title: z.string(),
  status: CaseStatus,
  priority: Priority,
  groupId: Id.nullable(),
  groupName: z.string().nullable(),
  assigneeId: Id.nullable(),
  assigneeName: z.string().nullable(),
  version: z.number().int(),
  tags: z.array(z.string()),
  caseType: z.object({ id: Id, name: z.string(), fields: z.array(FieldDef) }).nullable(),
  /** Custom field values. */
  fields: z.record(z.string(), z.unknown()),
  /** Cases linked to this one (both directions), visible or not: a link names only the reference. */
  links: z.array(z.object({ id: Id, reference: z.string(), title: z.string(), status: CaseStatus })),
  /** Statuses the workflow allows from the current one. */
  allowedStatuses: z.array(CaseStatus),
  stage: Stage,
  /** Playbook steps then tasks added by hand. */
  tasks: z.array(CaseTask),
  sla: z.array(SlaClock),
  /** While Awaiting info: what the constituent was asked for. */
  awaiting: z.string().nullable(),
  /** A duplicate merged into another case: that case. */
  mergedInto: z.object({ id: Id, reference: z.string() }).nullable(),
  constituent: z
    .object({
      id: Id,
      displayName: z.string().nullable(),
      email: z.string().nullable(),
      phone: z.string().nullable(),
      language: z.string(),
      /** Their other cases with this agency, newest first. */
      otherCases: z.array(z.object({ id: Id, reference: z.string(), title: z.string(), status: CaseStatus })),
      /** Their conversations with this agency on every channel, newest first. */
      conversations: z.array(
        z.object({
          id: Id,
          channel: Channel,
          status: z.enum(['queued', 'active', 'ended']),
          caseReference: z.string(),
          createdAt: z.iso.datetime({ offset: true }),
        }),
      ),
    })
    .nullable(),
  events: z.array(CaseEvent),
  createdAt: z.iso.datetime({ offset: true }),
  updatedAt: z.iso.datetime({ offset: true }),
});
export type CaseDetail = z.infer<typeof CaseDetail>;

/** Change a case; `version` is the one you saw, so two people editing at once cannot overwrite each other. */
export const CaseUpdateInput = z
  .strictObject({
    version: z.number().int().positive(),
    status: CaseStatus.optional(),
    priority: Priority.optional(),
    /** The whole new set of tags. */
    tags: z.array(Tag).max(20, 'A case can have at most 20 tags').optional(),
    /** Set the case type (its fields then apply). */
    caseTypeId: Id.optional(),
    /** Custom field values to set (others keep theirs); null clears one. */
    fields: z.record(z.string(), z.unknown()).optional(),
    stage: Stage.optional(),
    /** With status awaiting_info: what the constituent is asked for (they are told at once). */
    request: z.string().trim().min(1, 'Say what you need from the constituent').max(1000).optional(),
  })
  .refine((u) => Object.keys(u).some((k) => k !== 'version'), {
    message: 'Nothing to change',
    path: ['status'],
  });
export type CaseUpdateInput = z.input<typeof CaseUpdateInput>;

/** A task added by hand to a case. */
export const TaskCreateInput = z.strictObject({
  title: z.string().trim().min(1, 'Give the task a title').max(200),
  instructions: z.string().trim().max(2000).default(''),
  assigneeId: Id.nullable().default(null),
  groupId: Id.nullable().default(null),
  dueAt: z.iso.datetime({ offset: true, message: 'Due date is not a valid date and time' }).nullable().default(null),
});
export type TaskCreateInput = z.input<typeof TaskCreateInput>;

/** Mark a task done or not done. */
export const TaskUpdateInput = z.strictObject({ done: z.boolean() });
export type TaskUpdateInput = z.input<typeof TaskUpdateInput>;

/** The signed-in agent's own work beyond live conversations: open cases they own and tasks for them. */
export const MyWork = z.object({
  cases: z.array(
    z.object({
      id: Id,
      reference: z.string(),
      title: z.string(),
      status: CaseStatus,
      stage: Stage,
      priority: Priority,
      /** The soonest SLA due time still running, if any. */
      slaDueAt: z.iso.datetime({ offset: true }).nullable(),
      slaBreached: z.boolean(),
      updatedAt: z.iso.datetime({ offset: true }),
    }),
  ),
  tasks: z.array(
    z.object({
      id: Id,
      caseId: Id,
      reference: z.string(),
      title: z.string(),
      dueAt: z.iso.datetime({ offset: true }).nullable(),
      /** For me, or for one of my groups. */
      forGroup: z.boolean(),
    }),
  ),
});
export type MyWork = z.infer<typeof MyWork>;

/** How a group's queue reaches its agents. */
export const RoutingMode = z.enum(['manual', 'least_busy', 'round_robin']);
export type RoutingMode = z.infer<typeof RoutingMode>;

export const GroupSettings = z.strictObject({
  routing: RoutingMode,
  /** Routed work nobody answers within this many seconds goes back to the queue. */
  acceptSeconds: z.number().int().min(15, 'At least 15 seconds').max(3600, 'At most an hour').optional(),
});
export type GroupSettings = z.infer<typeof GroupSettings>;

/** What a routing rule looks at; every list given must contain the arriving work's value. */
export const RoutingConditions = z.strictObject({
  serviceIds: z.array(Id).max(50).optional(),
  caseTypeIds: z.array(Id).max(50).optional(),
  channels: z.array(Channel).optional(),
  languages: z.array(z.enum(['en', 'es'])).optional(),
  priorities: z.array(Priority).optional(),
  /** Constituent attribute: true matches people who have had a case with the agency before, false first-timers. */
  returning: z.boolean().optional(),
});
export type RoutingConditions = z.infer<typeof RoutingConditions>;

export const RoutingRuleInput = z.strictObject({
  name: z.string().trim().min(1, 'Give the rule a name').max(100),
  conditions: RoutingConditions.default({}),
  groupId: Id,
  priority: Priority.nullable().default(null),
  enabled: z.boolean().default(true),
});
export type RoutingRuleInput = z.input<typeof RoutingRuleInput>;

/** The whole ordered list at once: the order is the rules' precedence. */
export const RoutingRulesInput = z.strictObject({ rules: z.array(RoutingRuleInput).max(100) });

export const RoutingRule = z.object({
  id: Id,
  name: z.string(),
  conditions: RoutingConditions,
  groupId: Id,
  priority: Priority.nullable(),
  enabled: z.boolean(),
});
export type RoutingRule = z.infer<typeof RoutingRule>;

/** The facts of a piece of arriving work, for a rule preview ("where would this go?"). */
export const RoutingFacts = z.strictObject({
  serviceId: Id.nullable().default(null),
  caseTypeId: Id.nullable().default(null),
  channel: Channel.default('web'),
  language: z.enum(['en', 'es']).default('en'),
  priority: Priority.default('normal'),
  /** Has this constituent had a case with the agency before? */
  returning: z.boolean().default(false),
});
export type RoutingFacts = z.input<typeof RoutingFacts>;

export const RoutingDecision = z.object({
  /** The rule that matched; null: no rule matched and the default applied. */
  rule: z.object({ id: Id, name: z.string() }).nullable(),
  groupId: Id.nullable(),
  groupName: z.string().nullable(),
  priority: Priority,
  explanation: z.string(),
});
export type RoutingDecision = z.infer<typeof RoutingDecision>;

/** A group as admins configure it. */
export const GroupDetail = z.object({ id: Id, name: z.string(), routing: RoutingMode, acceptSeconds: z.number().int(), isDefault: z.boolean() });
export type GroupDetail = z.infer<typeof GroupDetail>;

/** One group on the supervisor's dashboard, as of `generatedAt`. */
export const DashboardGroup = z.object({
  id: Id,
  name: z.string(),
  routing: RoutingMode,
  waiting: z.number().int(),
  /** Seconds the first in line has waited (0 when nobody waits). */
  longestWaitSeconds: z.number().int(),
  /** Mean seconds from arrival to being taken, for conversations taken today. */
  averageWaitTodaySeconds: z.number().int().nullable(),
  active: z.number().int(),
  agents: z.array(
    z.object({ id: Id, name: z.string(), presence: Presence, load: z.number().int(), capacity: z.number().int() }),
  ),
  /** Open cases of the group past 75 % of an SLA target, and past 100 %. */
  slaAtRisk: z.number().int(),
  slaBreached: z.number().int(),
});
export type DashboardGroup = z.infer<typeof DashboardGroup>;

/** Today's figures for the supervisor's groups. */
export const DashboardToday = z.object({
  conversations: z.number().int(),
  byChannel: z.array(z.object({ key: z.string(), count: z.number().int() })),
  byCaseType: z.array(z.object({ key: z.string(), count: z.number().int() })),
  /** Median seconds from arrival to the first public agent reply. */
  firstResponseMedianSeconds: z.number().int().nullable(),
  /** Median seconds from opening to resolution, for cases resolved today. */
  resolutionMedianSeconds: z.number().int().nullable(),
  /** Conversations that ended before anyone took them. */
  abandoned: z.number().int(),
  /** Mean rating (1–5) and how many rated. */
  satisfaction: z.number().nullable(),
  ratings: z.number().int(),
});
export type DashboardToday = z.infer<typeof DashboardToday>;

export const Dashboard = z.object({
  groups: z.array(DashboardGroup),
  today: DashboardToday,
  generatedAt: z.iso.datetime({ offset: true }),
});
export type Dashboard = z.infer<typeof Dashboard>;

/** Reports: a date range (the agency's days, inclusive) and optionally one group. */
export const ReportQuery = z
  .object({
    from: z.iso.date({ message: 'From is a date (YYYY-MM-DD)' }),
    to: z.iso.date({ message: 'To is a date (YYYY-MM-DD)' }),
    groupId: Id.optional(),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .refine((q) => q.from <= q.to, { message: 'From must not be after To', path: ['from'] })
  .refine((q) => Date.parse(q.to) - Date.parse(q.from) <= 366 * 86_400_000, { message: 'At most a year at a time', path: ['to'] });
export type ReportQuery = z.input<typeof ReportQuery>;

/** One line of a report: a group or an agent over the range. Times in seconds; null when there is no data. */
export const ReportRow = z.object({
  kind: z.enum(['group', 'agent']),
  name: z.string(),
  conversations: z.number().int(),
  abandoned: z.number().int(),
  firstResponseMedian: z.number().int().nullable(),
  firstResponseP90: z.number().int().nullable(),
  resolved: z.number().int(),
  resolutionMedian: z.number().int().nullable(),
  resolutionP90: z.number().int().nullable(),
  /** Share of SLA clocks that finished in the range without a breach (0–100). */
  slaCompliance: z.number().nullable(),
  satisfaction: z.number().nullable(),
  ratings: z.number().int(),
});
export type ReportRow = z.infer<typeof ReportRow>;

export const Report = z.object({ from: z.string(), to: z.string(), rows: z.array(ReportRow) });
export type Report = z.infer<typeof Report>;

/** How much an agent takes at once: written conversations, and calls. */
export const StaffCapacityInput = z.strictObject({
  capacity: z.number().int().min(0).max(50),
  voiceCapacity: z.number().int().min(0).max(5).optional(),
});

/** An admin changes a colleague's role and groups; open sockets follow within seconds. */
export const StaffAccessInput = z.strictObject({
  role: Role,
  groupIds: z.array(Id).max(100),
  /** Supervisors only: sees every group of the agency, including groups added later. */
  allGroups: z.boolean().optional(),
});
export type StaffAccessInput = z.infer<typeof StaffAccessInput>;

/** A colleague's account as an admin manages it. */
export const StaffAccount = z.object({
  id: Id,
  email: z.string(),
  displayName: z.string(),
  role: Role,
  groupIds: z.array(Id),
  allGroups: z.boolean(),
  presence: Presence,
  disabled: z.boolean(),
  createdAt: z.string(),
});
export type StaffAccount = z.infer<typeof StaffAccount>;

/** Long enough to resist guessing; no other rules (NIST SP 800-63B). */
export const NewPassword = z
  .string()
  .min(12, 'At least 12 characters')
  .max(200, 'At most 200 characters');

/** An admin opens an account for a colleague and tells them the first password. */
export const NewStaffInput = z.strictObject({
  email: Email,
  displayName: z.string().trim().min(1, 'Enter a name').max(120, 'At most 120 characters'),
  role: Role,
  groupIds: z.array(Id).max(100),
  allGroups: z.boolean().optional(),
  password: NewPassword,
});
export type NewStaffInput = z.infer<typeof NewStaffInput>;

export const PasswordResetInput = z.strictObject({ password: NewPassword });

export const NewGroupInput = z.strictObject({
  name: z.string().trim().min(1, 'Enter a name').max(80, 'At most 80 characters'),
});
export type NewGroupInput = z.infer<typeof NewGroupInput>;

/** A supervisor changes an agent's status (an agent who walked away still showing available). */
export const StaffPresenceInput = z.strictObject({ presence: Presence });

/** Pushed to a case's assignee and the supervisors when an SLA is near or past its target. */
export const SlaAlert = z.object({
  caseId: Id,
  reference: z.string(),
  title: z.string(),
  metric: z.enum(['first_response', 'resolution']),
  level: z.enum(['warning', 'breach']),
  dueAt: z.iso.datetime({ offset: true }),
});
export type SlaAlert = z.infer<typeof SlaAlert>;

/** A case opened by hand: a walk-in, a letter, a phone call taken outside CaseBridge. */
export const CaseCreateInput = z.strictObject({
  title: z.string().trim().min(1, 'Give the case a title').max(200),
  caseTypeId: Id.optional(),
  groupId: Id.optional(),
  priority: Priority.optional(),
  constituent: z
    .strictObject({
      name: z.string().trim().min(1, 'Name is required').max(120),
      email: z.email('Email address is not valid').max(254).optional(),
      phone: z
        .string()
        .trim()
        .regex(/^\+?[0-9 ()-]{7,20}$/, 'Phone number is not valid')
        .optional(),
      language: z.enum(['en', 'es']).default('en'),
    })
    .optional(),
  fields: z.record(z.string(), z.unknown()).optional(),
});
export type CaseCreateInput = z.input<typeof CaseCreateInput>;

/** Another case, by its reference number (e.g. to link it, or to move a conversation to it). */
export const CaseReferenceInput = z.strictObject({
  reference: z.string().trim().toUpperCase().min(1, 'Enter a case reference').max(40),
});
export type CaseReferenceInput = z.input<typeof CaseReferenceInput>;

/** Sent to staff when a case changes. */
export const CaseChanged = z.object({
  caseId: Id,
  status: CaseStatus,
  priority: Priority,
  tags: z.array(z.string()),
  version: z.number().int(),
});
export type CaseChanged = z.infer<typeof CaseChanged>;

/** The default workflow: from each status, where a case may go next. Case types may define their own later. */
export const DEFAULT_TRANSITIONS: Record<CaseStatus, CaseStatus[]> = {
  new: ['open', 'awaiting_info', 'resolved', 'cancelled'],
  open: ['awaiting_info', 'resolved', 'cancelled'],
  awaiting_info: ['open', 'resolved', 'cancelled'],
  resolved: ['open', 'closed'],
  closed: [],
  cancelled: [],
};

// ---- mentions ------------------------------------------------------------------------------------

/** Told to a staff member an internal note mentioned by name (`@Jordan Agent`). */
export const Mention = z.object({
  conversationId: Id,
  caseReference: z.string(),
  byName: z.string(),
  preview: z.string(),
  /** A supervisor's note to the agent handling the conversation (a whisper), not an @mention. */
  whisper: z.boolean().optional(),
});
export type Mention = z.infer<typeof Mention>;

// ---- Twilio ---------------------------------------------------------------------------------------

const E164 = z.string().trim().regex(/^\+[1-9]\d{6,14}$/, 'Phone numbers are in E.164 form, like +15551234567');

/** An agency's Twilio settings as an admin writes them; leave authToken out to keep the stored one. */
export const TwilioSettingsInput = z.strictObject({
  accountSid: z.string().trim().regex(/^AC[0-9a-fA-F]{32}$/, 'An account SID starts with AC and has 32 hex digits'),
  authToken: z.string().trim().regex(/^[0-9a-fA-F]{32}$/, 'An auth token has 32 hex digits').optional(),
  publicBaseUrl: z.url({ protocol: /^https?$/, message: 'The public URL Twilio calls, like https://cases.example.gov' }),
  numbers: z.array(E164).min(1, 'Add the phone number Twilio sends to').max(20),
});
export type TwilioSettingsInput = z.input<typeof TwilioSettingsInput>;

/** What the console shows: never the auth token, only whether one is stored. */
export const TwilioSettings = z.object({
  configured: z.boolean(),
  accountSid: z.string().nullable(),
  hasAuthToken: z.boolean(),
  publicBaseUrl: z.string().nullable(),
  numbers: z.array(z.string()),
  /** What is missing for SMS to work, in words. */
  missing: z.array(z.string()),
});
export type TwilioSettings = z.infer<typeof TwilioSettings>;
