import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { BusinessHours, DataManifest, ExchangeEvent, FieldDef, PartnerService, SharedCase, LocalText, MessageMeta, PlaybookAction, PlaybookTask, RoutingConditions, SensitivePattern, SlaPolicy } from '@casebridge/shared';

// Timestamps come back as ISO-ish strings (mode 'string'): the same on PGlite and node-postgres,
// and no time-zone surprises from Date conversions.
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'string' });
const createdAt = () => ts('created_at').notNull().defaultNow();

export const agencies = pgTable('agencies', {
  id: uuid('id').primaryKey().defaultRandom(),
  slug: text('slug').notNull().unique(),
  name: text('name').notNull(),
  /** Public key a website puts in the widget tag; not a secret. */
  widgetKey: text('widget_key').notNull().unique(),
  /** Origins allowed to embed the widget (exact match, e.g. https://www.springfield.gov). */
  allowedOrigins: jsonb('allowed_origins').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
  /** Prefix of case reference numbers, e.g. GEN → GEN-2026-000123. */
  casePrefix: text('case_prefix').notNull().default('CASE'),
  /** Weekly opening hours for live chat; null means always open. */
  businessHours: jsonb('business_hours').$type<BusinessHours>(),
  /** Local dates (YYYY-MM-DD) the agency is closed: SLA clocks do not run on them. */
  holidays: jsonb('holidays').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
  /** Twilio: the account, its auth token sealed at rest (never returned), and the base URL Twilio calls. */
  twilioAccountSid: text('twilio_account_sid'),
  twilioAuthTokenSealed: text('twilio_auth_token_sealed'),
  twilioPublicBaseUrl: text('twilio_public_base_url'),
  /** The agency's phone numbers (E.164); a number belongs to one agency. */
  twilioNumbers: text('twilio_numbers').array().notNull().default(sql`'{}'::text[]`),
  /** Voice in the browser: an API key (its secret sealed at rest, never returned) and the TwiML App SID. */
  twilioApiKeySid: text('twilio_api_key_sid'),
  twilioApiKeySecretSealed: text('twilio_api_key_secret_sealed'),
  twilioTwimlAppSid: text('twilio_twiml_app_sid'),
  /** Extra patterns masked in constituent messages, besides SSNs and payment cards (admin setting, checked). */
  sensitivePatterns: jsonb('sensitive_patterns').$type<SensitivePattern[]>().notNull().default(sql`'[]'::jsonb`),
  createdAt: createdAt(),
});

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    email: text('email').notNull(),
    displayName: text('display_name').notNull(),
    role: text('role', { enum: ['admin', 'supervisor', 'agent', 'auditor'] }).notNull(),
    passwordHash: text('password_hash').notNull(),
    /** Set by the staff member; shown to colleagues. Nobody is offered new work while away or offline. */
    presence: text('presence', { enum: ['available', 'away', 'offline'] }).notNull().default('offline'),
    /** Most written conversations (web chat, SMS, portal) they take at once. */
    capacity: integer('capacity').notNull().default(3),
    /** Most calls at once (a person takes one call at a time unless told otherwise). */
    voiceCapacity: integer('voice_capacity').notNull().default(1),
    /** Calls are put through to this number (E.164); null: to the console in the browser. */
    voicePhone: text('voice_phone'),
    /** A supervisor for the whole agency: sees every group, including groups added later, without joining them. */
    allGroups: boolean('all_groups').notNull().default(false),
    disabledAt: ts('disabled_at'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('users_email_uq').on(t.email),
    check('users_role_ck', sql`${t.role} in ('admin','supervisor','agent','auditor')`),
    check('users_presence_ck', sql`${t.presence} in ('available','away','offline')`),
    check('users_capacity_ck', sql`${t.capacity} between 0 and 50`),
    check('users_voice_capacity_ck', sql`${t.voiceCapacity} between 0 and 5`),
  ],
);

export const groups = pgTable(
  'groups',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    name: text('name').notNull(),
    /** The group new web conversations go to until routing rules exist. */
    isDefault: boolean('is_default').notNull().default(false),
    /**
     * How queued work reaches agents: they take it themselves (manual), or it is assigned to the available
     * agent with the fewest conversations (least_busy) or in turn (round_robin), never past their capacity.
     */
    routing: text('routing', { enum: ['manual', 'least_busy', 'round_robin'] }).notNull().default('manual'),
    /** Routed work nobody has answered in this many seconds goes back to the queue (keeping its place). */
    acceptSeconds: integer('accept_seconds').notNull().default(120),
    createdAt: createdAt(),
  },
  (t) => [
    check('groups_routing_ck', sql`${t.routing} in ('manual','least_busy','round_robin')`),
    uniqueIndex('groups_agency_name_uq').on(t.agencyId, t.name),
    uniqueIndex('groups_one_default_uq').on(t.agencyId).where(sql`${t.isDefault}`),
  ],
);

export const groupMemberships = pgTable(
  'group_memberships',
  {
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId] }), index('group_memberships_user_ix').on(t.userId)],
);

/** Server-side staff sessions; the cookie holds a random token, the table only its SHA-256. */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tokenHash: text('token_hash').notNull(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    csrfToken: text('csrf_token').notNull(),
    createdAt: createdAt(),
    lastSeenAt: ts('last_seen_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    revokedAt: ts('revoked_at'),
  },
  (t) => [uniqueIndex('sessions_token_hash_uq').on(t.tokenHash), index('sessions_user_ix').on(t.userId)],
);

export const constituents = pgTable(
  'constituents',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    displayName: text('display_name'),
    email: text('email'),
    phone: text('phone'),
    language: text('language').notNull().default('en'),
    /** Their name, email and phone were removed (retention or an approved deletion request). */
    anonymisedAt: ts('anonymised_at'),
    createdAt: createdAt(),
  },
  (t) => [index('constituents_agency_ix').on(t.agencyId)],
);

/** How a constituent is reached on one channel: a widget session, a phone number, an email address. */
export const channelIdentities = pgTable(
  'channel_identities',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    constituentId: uuid('constituent_id').notNull().references(() => constituents.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: ['web', 'sms', 'voice', 'email', 'portal'] }).notNull(),
    address: text('address').notNull(),
    /** The number texted STOP: nothing is sent to it until it texts START. */
    optedOutAt: ts('opted_out_at'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('channel_identities_address_uq').on(t.agencyId, t.channel, t.address)],
);

/** A constituent's widget session: what a widget token points at, so it can be revoked. */
export const widgetSessions = pgTable('widget_sessions', {
  id: uuid('id').primaryKey().defaultRandom(),
  agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
  constituentId: uuid('constituent_id').notNull().references(() => constituents.id, { onDelete: 'cascade' }),
  /** Portal sign-ins last a few hours; widget sessions do not expire (they are revoked). */
  expiresAt: ts('expires_at'),
  createdAt: createdAt(),
  revokedAt: ts('revoked_at'),
});

/**
 * A kind of case (pothole report, parking permit…): its custom fields, defaults and workflow. Fields are only
 * ever added or relaxed, never removed or retyped, so existing cases stay valid; `version` counts changes.
 */
export const caseTypes = pgTable(
  'case_types',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    name: text('name').notNull(),
    prefix: text('prefix').notNull(),
    fields: jsonb('fields').$type<FieldDef[]>().notNull().default(sql`'[]'::jsonb`),
    defaultGroupId: uuid('default_group_id').references(() => groups.id, { onDelete: 'set null' }),
    defaultPriority: text('default_priority', { enum: ['low', 'normal', 'high', 'urgent'] }).notNull().default('normal'),
    retentionDays: integer('retention_days').notNull().default(2555),
    transitions: jsonb('transitions').$type<Record<string, string[]>>(),
    /** Ordered steps per stage; copied onto each case of the type as tasks. */
    playbook: jsonb('playbook').$type<PlaybookTask[]>().notNull().default(sql`'[]'::jsonb`),
    /** Business-minute targets per priority; null: no SLA. */
    sla: jsonb('sla').$type<SlaPolicy>(),
    reopenDays: integer('reopen_days').notNull().default(14),
    version: integer('version').notNull().default(1),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('case_types_name_uq').on(t.agencyId, t.name),
    uniqueIndex('case_types_prefix_uq').on(t.agencyId, t.prefix),
  ],
);

/** The agency's service catalog: what a constituent can ask for, and the case type each request creates. */
export const serviceDefinitions = pgTable(
  'service_definitions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    caseTypeId: uuid('case_type_id').notNull().references(() => caseTypes.id, { onDelete: 'restrict' }),
    title: jsonb('title').$type<LocalText>().notNull(),
    description: jsonb('description').$type<LocalText>().notNull(),
    category: text('category').notNull(),
    keywords: text('keywords').array().notNull().default(sql`'{}'::text[]`),
    questions: jsonb('questions').$type<{ fieldKey: string; prompt: LocalText }[]>().notNull().default(sql`'[]'::jsonb`),
    channels: text('channels').array().notNull().default(sql`'{web,portal}'::text[]`),
    languages: text('languages').array().notNull().default(sql`'{en,es}'::text[]`),
    published: boolean('published').notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [index('service_definitions_agency_ix').on(t.agencyId)],
);

/** Where new work goes: the first enabled rule (by position) whose conditions all hold picks the group. */
export const routingRules = pgTable(
  'routing_rules',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'cascade' }),
    position: integer('position').notNull(),
    name: text('name').notNull(),
    /** Each list, when present and not empty, must contain the fact; absent lists match anything. */
    conditions: jsonb('conditions').$type<RoutingConditions>().notNull().default(sql`'{}'::jsonb`),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    /** Raises (or sets) the priority of the case it routes. */
    priority: text('priority', { enum: ['low', 'normal', 'high', 'urgent'] }),
    enabled: boolean('enabled').notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [index('routing_rules_agency_ix').on(t.agencyId, t.position)],
);

/** Reference numbers are per agency and year, gap-tolerant but never reused. */
export const caseCounters = pgTable(
  'case_counters',
  {
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'cascade' }),
    year: integer('year').notNull(),
    lastNumber: integer('last_number').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.agencyId, t.year] })],
);

export const cases = pgTable(
  'cases',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    reference: text('reference').notNull(),
    title: text('title').notNull(),
    status: text('status', { enum: ['new', 'open', 'awaiting_info', 'resolved', 'closed', 'cancelled'] })
      .notNull()
      .default('new'),
    priority: text('priority', { enum: ['low', 'normal', 'high', 'urgent'] }).notNull().default('normal'),
    constituentId: uuid('constituent_id').references(() => constituents.id, { onDelete: 'set null' }),
    groupId: uuid('group_id').references(() => groups.id, { onDelete: 'set null' }),
    assigneeId: uuid('assignee_id').references(() => users.id, { onDelete: 'set null' }),
    /** What kind of case it is: its fields, workflow and reference prefix. Null until an agent or a service sets it. */
    caseTypeId: uuid('case_type_id').references(() => caseTypes.id, { onDelete: 'restrict' }),
    /** Custom field values, checked against the case type on every write. */
    customFields: jsonb('custom_fields').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    /** Free labels agents put on a case ("pothole", "follow-up"), lower case, for filtering. */
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    stage: text('stage', { enum: ['intake', 'review', 'process', 'decision'] }).notNull().default('intake'),
    /** While Awaiting info: what the constituent was asked for (shown in the portal). */
    awaitingRequest: text('awaiting_request'),
    /** When it was last resolved: a reply within the case type's reopen window reopens it, then it closes. */
    resolvedAt: ts('resolved_at'),
    /** A duplicate merged into another case points at it; its conversations and timeline moved there. */
    mergedIntoId: uuid('merged_into_id').references((): AnyPgColumn => cases.id, { onDelete: 'set null' }),
    /** Legal hold (issue #11): set by an admin; retention and deletion requests leave the case untouched while set. */
    legalHoldAt: ts('legal_hold_at'),
    legalHoldBy: uuid('legal_hold_by').references(() => users.id, { onDelete: 'set null' }),
    legalHoldReason: text('legal_hold_reason'),
    /** When its messages, files, recordings and personal details were deleted or anonymised (retention or a deletion request). */
    purgedAt: ts('purged_at'),
    version: integer('version').notNull().default(1),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check('cases_stage_ck', sql`${t.stage} in ('intake','review','process','decision')`),
    uniqueIndex('cases_reference_uq').on(t.agencyId, t.reference),
    index('cases_group_status_ix').on(t.groupId, t.status),
  ],
);

export const conversations = pgTable(
  'conversations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    constituentId: uuid('constituent_id').notNull().references(() => constituents.id, { onDelete: 'restrict' }),
    channelIdentityId: uuid('channel_identity_id')
      .notNull()
      .references(() => channelIdentities.id, { onDelete: 'restrict' }),
    channel: text('channel', { enum: ['web', 'sms', 'voice', 'email', 'portal'] }).notNull(),
    status: text('status', { enum: ['queued', 'active', 'ended'] }).notNull().default('queued'),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'restrict' }),
    assigneeId: uuid('assignee_id').references(() => users.id, { onDelete: 'set null' }),
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'restrict' }),
    language: text('language', { enum: ['en', 'es'] }).notNull().default('en'),
    /** The seq of the newest message; the next message takes lastSeq + 1 under a row lock. */
    lastSeq: integer('last_seq').notNull().default(0),
    /** Receipts: how far each side has received and read. */
    constituentDeliveredSeq: integer('constituent_delivered_seq').notNull().default(0),
    constituentReadSeq: integer('constituent_read_seq').notNull().default(0),
    agentDeliveredSeq: integer('agent_delivered_seq').notNull().default(0),
    agentReadSeq: integer('agent_read_seq').notNull().default(0),
    /** Left while chat was closed or unstaffed: staff follow up on the case. */
    offline: boolean('offline').notNull().default(false),
    ratingScore: integer('rating_score'),
    ratingComment: text('rating_comment'),
    claimedAt: ts('claimed_at'),
    /** Who made the current assignment: the agent taking it, or routing (which it must then accept by answering). */
    assignedBy: text('assigned_by', { enum: ['agent', 'routing'] }),
    /** A web chat the constituent asked to continue by text: the agency's public replies also go to this number. */
    textIdentityId: uuid('text_identity_id').references(() => channelIdentities.id, { onDelete: 'set null' }),
    version: integer('version').notNull().default(1),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    endedAt: ts('ended_at'),
  },
  (t) => [
    // One open conversation per constituent per channel identity: two racing "start chat" calls cannot both win.
    uniqueIndex('conversations_one_open_uq').on(t.channelIdentityId).where(sql`${t.status} <> 'ended'`),
    index('conversations_group_status_ix').on(t.groupId, t.status),
    index('conversations_constituent_ix').on(t.constituentId),
    index('conversations_case_ix').on(t.caseId),
  ],
);

export const messages = pgTable(
  'messages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    conversationId: uuid('conversation_id').notNull().references(() => conversations.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    clientMessageId: text('client_message_id'),
    /** Id on another system (a Twilio MessageSid): a retried webhook finds the message it already made. */
    externalId: text('external_id'),
    authorKind: text('author_kind', { enum: ['agent', 'constituent', 'system'] }).notNull(),
    authorUserId: uuid('author_user_id').references(() => users.id, { onDelete: 'set null' }),
    authorConstituentId: uuid('author_constituent_id').references(() => constituents.id, { onDelete: 'set null' }),
    /** The staff member's display name at the time of writing, as the constituent saw it. */
    authorName: text('author_name'),
    visibility: text('visibility', { enum: ['public', 'internal'] }).notNull().default('public'),
    body: text('body').notNull(),
    channel: text('channel', { enum: ['web', 'sms', 'voice', 'email', 'portal'] }).notNull(),
    /**
     * How a message the agency sent by text is doing: pending (stored, not yet handed to Twilio), sending, then
     * Twilio's own queued/sent/delivered or undelivered/failed. Null for messages that go nowhere by text.
     */
    deliveryStatus: text('delivery_status', {
      enum: ['pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed'],
    }),
    deliveryErrorCode: text('delivery_error_code'),
    deliveryError: text('delivery_error'),
    deliveryAttempts: integer('delivery_attempts').notNull().default(0),
    deliveryUpdatedAt: ts('delivery_updated_at'),
    /** What the message carries besides its text: which sensitive numbers were masked, a secure-field request. */
    meta: jsonb('meta').$type<MessageMeta>(),
    createdAt: createdAt(),
  },
  (t) => [
    index('messages_delivery_pending_ix').on(t.deliveryStatus).where(sql`${t.deliveryStatus} in ('pending', 'sending')`),
    uniqueIndex('messages_seq_uq').on(t.conversationId, t.seq),
    uniqueIndex('messages_client_id_uq').on(t.conversationId, t.clientMessageId),
    uniqueIndex('messages_external_id_uq').on(t.externalId).where(sql`${t.externalId} is not null`),
  ],
);

// Files live in the database so every node serves them and backups hold them (10 MB cap per file).
const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => 'bytea' });

/** A file a constituent or agent attached in a conversation; served only to those who may see its message. */
export const attachments = pgTable(
  'attachments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    conversationId: uuid('conversation_id').notNull().references(() => conversations.id, { onDelete: 'cascade' }),
    messageId: uuid('message_id').references(() => messages.id, { onDelete: 'set null' }),
    uploaderKind: text('uploader_kind', { enum: ['agent', 'constituent'] }).notNull(),
    uploaderId: uuid('uploader_id').notNull(),
    filename: text('filename').notNull(),
    /** Decided from the bytes, never from the name or the client's header. */
    contentType: text('content_type').notNull(),
    size: integer('size').notNull(),
    data: bytea('data').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('attachments_conversation_ix').on(t.conversationId), index('attachments_message_ix').on(t.messageId)],
);

/** The case timeline: every conversation, call, SMS, note, status change and task of a case. */
export const caseEvents = pgTable(
  'case_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    actorKind: text('actor_kind', { enum: ['agent', 'constituent', 'system'] }).notNull(),
    actorUserId: uuid('actor_user_id').references(() => users.id, { onDelete: 'set null' }),
    conversationId: uuid('conversation_id').references(() => conversations.id, { onDelete: 'set null' }),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
  },
  (t) => [index('case_events_case_ix').on(t.caseId, t.createdAt)],
);

/** A case's to-do list: its type's playbook steps, and tasks agents add by hand. */
export const caseTasks = pgTable(
  'case_tasks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    /** The playbook step it came from; null for a task added by hand. */
    templateKey: text('template_key'),
    stage: text('stage', { enum: ['intake', 'review', 'process', 'decision'] }),
    position: integer('position').notNull().default(0),
    title: text('title').notNull(),
    instructions: text('instructions').notNull().default(''),
    required: boolean('required').notNull().default(false),
    action: jsonb('action').$type<PlaybookAction>(),
    assigneeId: uuid('assignee_id').references(() => users.id, { onDelete: 'set null' }),
    groupId: uuid('group_id').references(() => groups.id, { onDelete: 'set null' }),
    dueAt: ts('due_at'),
    doneAt: ts('done_at'),
    doneBy: uuid('done_by').references(() => users.id, { onDelete: 'set null' }),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [
    index('case_tasks_case_ix').on(t.caseId),
    uniqueIndex('case_tasks_template_uq').on(t.caseId, t.templateKey).where(sql`${t.templateKey} is not null`),
    index('case_tasks_assignee_ix').on(t.assigneeId).where(sql`${t.doneAt} is null`),
  ],
);

/**
 * SLA clocks, one per case and metric. Due and warning instants are absolute; a pause in Awaiting info pushes
 * them later by the business time it lasted. `warned_at`/`breached_at` are set by one conditional UPDATE, so
 * each alert fires once however many nodes look, and survives restarts.
 */
export const caseSlas = pgTable(
  'case_slas',
  {
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    metric: text('metric', { enum: ['first_response', 'resolution'] }).notNull(),
    targetMinutes: integer('target_minutes').notNull(),
    startedAt: ts('started_at').notNull(),
    warnAt: ts('warn_at').notNull(),
    dueAt: ts('due_at').notNull(),
    pausedAt: ts('paused_at'),
    metAt: ts('met_at'),
    warnedAt: ts('warned_at'),
    breachedAt: ts('breached_at'),
  },
  (t) => [
    primaryKey({ columns: [t.caseId, t.metric] }),
    index('case_slas_running_ix').on(t.dueAt).where(sql`${t.metAt} is null and ${t.breachedAt} is null`),
  ],
);

/** One-time codes that let a constituent into the portal for one case; only a hash is kept. */
export const portalCodes = pgTable(
  'portal_codes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    expiresAt: ts('expires_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    usedAt: ts('used_at'),
    createdAt: createdAt(),
  },
  (t) => [index('portal_codes_case_ix').on(t.caseId, t.createdAt)],
);

/** Cases that belong together (the same pothole reported twice). Stored both ways so either side lists it. */
export const caseLinks = pgTable(
  'case_links',
  {
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    linkedCaseId: uuid('linked_case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.caseId, t.linkedCaseId] }),
    check('case_links_not_self_ck', sql`${t.caseId} <> ${t.linkedCaseId}`),
  ],
);

/** Replies agents insert with `/` in the composer; `{name}` becomes the constituent's name. */
export const cannedResponses = pgTable(
  'canned_responses',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    body: text('body').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('canned_responses_title_uq').on(t.agencyId, t.title)],
);

/** Append-only record of who did what. Never updated, never deleted by the application. */
/**
 * Append-only (enforced in the database: a trigger refuses UPDATE, DELETE and TRUNCATE). A BEFORE INSERT
 * trigger sets the time (the database's now()), the actor's role, and chains each row to the previous one of
 * its agency (`chain`): seq, prev_hash and hash = sha256 of the row's canonical form (migration 0013). The
 * chain head is a locked row in audit_chain_heads, so concurrent writers on several nodes cannot fork it.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').references(() => agencies.id, { onDelete: 'restrict' }),
    actorKind: text('actor_kind', { enum: ['staff', 'constituent', 'system', 'anonymous'] }).notNull(),
    actorId: uuid('actor_id'),
    /** The staff member's role at the time (filled by the database from users when not given). */
    actorRole: text('actor_role'),
    action: text('action').notNull(),
    objectType: text('object_type'),
    objectId: text('object_id'),
    outcome: text('outcome', { enum: ['success', 'denied', 'failure'] }).notNull(),
    sourceIp: text('source_ip'),
    /** sha256 of the User-Agent header, first 16 hex characters: correlates without storing it. */
    userAgentHash: text('user_agent_hash'),
    detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
    /** The hash chain, set by the database: the agency id (or 'global'), position, previous and own hash. */
    chain: text('chain'),
    seq: bigint('seq', { mode: 'number' }),
    prevHash: text('prev_hash'),
    hash: text('hash'),
  },
  (t) => [
    index('audit_log_agency_ix').on(t.agencyId, t.createdAt),
    uniqueIndex('audit_log_chain_seq_uq').on(t.chain, t.seq),
  ],
);

/** The last link of each audit chain; its row lock serializes appends to that chain. */
export const auditChainHeads = pgTable('audit_chain_heads', {
  chain: text('chain').primaryKey(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  hash: text('hash').notNull(),
});

/**
 * A value an agent asked a constituent for through a separate form (a secure field): stored sealed, never in
 * the transcript, shown only to permitted staff (every reveal is audited).
 */
export const secureFields = pgTable(
  'secure_fields',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    conversationId: uuid('conversation_id').notNull().references(() => conversations.id, { onDelete: 'cascade' }),
    caseId: uuid('case_id').notNull().references(() => cases.id, { onDelete: 'cascade' }),
    label: text('label').notNull(),
    kind: text('kind', { enum: ['ssn', 'card', 'account', 'other'] }).notNull(),
    requestedBy: uuid('requested_by').references(() => users.id, { onDelete: 'set null' }),
    valueSealed: text('value_sealed'),
    providedAt: ts('provided_at'),
    createdAt: createdAt(),
  },
  (t) => [index('secure_fields_conversation_ix').on(t.conversationId)],
);

/**
 * A phone call to one of the agency's numbers, from the menu to hang-up. It becomes a voice conversation (and
 * a case) when the caller joins a queue. `seen` holds the webhook deliveries already applied (status, leg,
 * recording and transcription keys), so Twilio's retries add nothing twice.
 */
export const calls = pgTable(
  'calls',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    callSid: text('call_sid').notNull(),
    conversationId: uuid('conversation_id').references(() => conversations.id, { onDelete: 'set null' }),
    caseId: uuid('case_id').references(() => cases.id, { onDelete: 'set null' }),
    constituentId: uuid('constituent_id').references(() => constituents.id, { onDelete: 'set null' }),
    fromNumber: text('from_number').notNull(),
    toNumber: text('to_number').notNull(),
    language: text('language', { enum: ['en', 'es'] }).notNull().default('en'),
    serviceId: uuid('service_id').references(() => serviceDefinitions.id, { onDelete: 'set null' }),
    state: text('state', {
      enum: ['ivr', 'queued', 'connecting', 'in_progress', 'completed', 'abandoned', 'voicemail', 'callback'],
    })
      .notNull()
      .default('ivr'),
    /** What the caller asked for while waiting (before Twilio takes them out of the queue). */
    choice: text('choice', { enum: ['callback', 'voicemail'] }),
    agentId: uuid('agent_id').references(() => users.id, { onDelete: 'set null' }),
    queuedAt: ts('queued_at'),
    answeredAt: ts('answered_at'),
    endedAt: ts('ended_at'),
    durationSeconds: integer('duration_seconds'),
    recordingSid: text('recording_sid'),
    recordingUrl: text('recording_url'),
    recordingKind: text('recording_kind', { enum: ['voicemail', 'call'] }),
    recordingDurationSeconds: integer('recording_duration_seconds'),
    transcriptionStatus: text('transcription_status'),
    transcriptionText: text('transcription_text'),
    taskId: uuid('task_id').references(() => caseTasks.id, { onDelete: 'set null' }),
    seen: text('seen').array().notNull().default(sql`'{}'::text[]`),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('calls_call_sid_uq').on(t.callSid),
    index('calls_conversation_ix').on(t.conversationId),
    index('calls_case_ix').on(t.caseId),
    check(
      'calls_state_ck',
      sql`${t.state} in ('ivr','queued','connecting','in_progress','completed','abandoned','voicemail','callback')`,
    ),
  ],
);

/**
 * Issue #11, single sign-on: the agency's OpenID Connect provider. The client secret is sealed at rest (AES-GCM,
 * like the Twilio token) and never returned. Claims map to a role and to groups; `passwordsOff` refuses local
 * passwords for the agency's staff. `emailDomains` tell the sign-in page which agency an address belongs to.
 */
export const agencySignIn = pgTable('agency_sign_in', {
  agencyId: uuid('agency_id').primaryKey().references(() => agencies.id, { onDelete: 'cascade' }),
  enabled: boolean('enabled').notNull().default(false),
  displayName: text('display_name').notNull(),
  issuer: text('issuer').notNull(),
  clientId: text('client_id').notNull(),
  clientSecretSealed: text('client_secret_sealed'),
  emailDomains: text('email_domains').array().notNull().default(sql`'{}'::text[]`),
  roleClaim: text('role_claim').notNull().default('roles'),
  roleMap: jsonb('role_map').$type<{ value: string; role: 'admin' | 'supervisor' | 'agent' | 'auditor' }[]>().notNull().default(sql`'[]'::jsonb`),
  groupClaim: text('group_claim').notNull().default('groups'),
  groupMap: jsonb('group_map').$type<{ value: string; groupId: string }[]>().notNull().default(sql`'[]'::jsonb`),
  /** Create a staff account on first sign-in when none has the (verified) email; otherwise only existing staff. */
  provisionUsers: boolean('provision_users').notNull().default(false),
  passwordsOff: boolean('passwords_off').notNull().default(false),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** A sign-in in flight: the state handed to the provider (hash only), its PKCE verifier and nonce; used once. */
export const ssoStates = pgTable(
  'sso_states',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    stateHash: text('state_hash').notNull(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'cascade' }),
    /** sha256 of a random value in a cookie of the browser that started it: another browser cannot finish it. */
    browserHash: text('browser_hash').notNull(),
    codeVerifier: text('code_verifier').notNull(),
    nonce: text('nonce').notNull(),
    next: text('next'),
    expiresAt: ts('expires_at').notNull(),
    usedAt: ts('used_at'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('sso_states_state_uq').on(t.stateHash)],
);

/** Which provider account (issuer + subject) is which staff member, fixed at their first single sign-on. */
export const userIdentities = pgTable(
  'user_identities',
  {
    issuer: text('issuer').notNull(),
    subject: text('subject').notNull(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.issuer, t.subject] }), index('user_identities_user_ix').on(t.userId)],
);

/**
 * A signed record of one purge (a retention run or an approved deletion request): counts, and the purged case
 * ids hashed with the agency's key so the report names nothing; Ed25519-signed with the server's purge key.
 */
export const purgeReports = pgTable(
  'purge_reports',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    kind: text('kind', { enum: ['retention', 'deletion_request'] }).notNull(),
    /** The canonical JSON that was signed (counts, hashed ids, as-of time). */
    body: text('body').notNull(),
    signature: text('signature').notNull(),
    keyId: text('key_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('purge_reports_agency_ix').on(t.agencyId, t.createdAt)],
);

/** A constituent's request to have their data deleted, and an admin's decision on it. */
export const deletionRequests = pgTable(
  'deletion_requests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    constituentId: uuid('constituent_id').notNull().references(() => constituents.id, { onDelete: 'cascade' }),
    /** The case they signed in to the portal with, or the admin named. */
    caseId: uuid('case_id').references(() => cases.id, { onDelete: 'set null' }),
    source: text('source', { enum: ['portal', 'staff'] }).notNull(),
    requestedBy: uuid('requested_by').references(() => users.id, { onDelete: 'set null' }),
    note: text('note').notNull().default(''),
    status: text('status', { enum: ['pending', 'approved', 'denied'] }).notNull().default('pending'),
    decidedBy: uuid('decided_by').references(() => users.id, { onDelete: 'set null' }),
    decidedAt: ts('decided_at'),
    decisionNote: text('decision_note'),
    reportId: uuid('report_id').references(() => purgeReports.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [
    index('deletion_requests_agency_ix').on(t.agencyId, t.status),
    uniqueIndex('deletion_requests_one_pending_uq').on(t.constituentId).where(sql`${t.status} = 'pending'`),
    check('deletion_requests_status_ck', sql`${t.status} in ('pending','approved','denied')`),
  ],
);

// ---- Service Exchange (issue #10) -----------------------------------------------------------------------

/** Another CaseBridge instance this agency hands work to and takes work from. Only its base URL is ever called. */
export const exchangePartners = pgTable(
  'exchange_partners',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    name: text('name').notNull(),
    baseUrl: text('base_url').notNull(),
    status: text('status', { enum: ['active', 'revoked'] }).notNull().default('active'),
    services: jsonb('services').$type<PartnerService[]>().notNull().default(sql`'[]'::jsonb`),
    /** What may be sent to this partner; nothing else ever leaves. */
    manifest: jsonb('manifest').$type<DataManifest>().notNull().default(sql`'{"caseFields":[],"constituent":[],"timeline":[]}'::jsonb`),
    offerTimeoutSeconds: integer('offer_timeout_seconds').notNull().default(600),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('exchange_partners_name_uq').on(t.agencyId, t.name),
    check('exchange_partners_status_ck', sql`${t.status} in ('active','revoked')`),
  ],
);

/**
 * Ed25519 keys per partner: ours (private half sealed at rest; `next` → `active` → `retired`, so a new key is
 * published before it signs) and theirs (any active one verifies, so they rotate without downtime).
 */
export const exchangeKeys = pgTable(
  'exchange_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    partnerId: uuid('partner_id').notNull().references(() => exchangePartners.id, { onDelete: 'cascade' }),
    keyId: text('key_id').notNull(),
    side: text('side', { enum: ['ours', 'theirs'] }).notNull(),
    publicKey: text('public_key').notNull(),
    privateKeySealed: text('private_key_sealed'),
    status: text('status', { enum: ['next', 'active', 'retired', 'revoked'] }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('exchange_keys_key_uq').on(t.keyId, t.side), index('exchange_keys_partner_ix').on(t.partnerId)],
);

/**
 * One handoff as seen from this side. `handoff_id` is the same on both instances (timelines and audit logs
 * carry it); the outbound row belongs to the offering agency, the inbound row to the receiving one.
 */
export const exchangeHandoffs = pgTable(
  'exchange_handoffs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    handoffId: uuid('handoff_id').notNull(),
    direction: text('direction', { enum: ['outbound', 'inbound'] }).notNull(),
    agencyId: uuid('agency_id').notNull().references(() => agencies.id, { onDelete: 'restrict' }),
    partnerId: uuid('partner_id').notNull().references(() => exchangePartners.id, { onDelete: 'restrict' }),
    kind: text('kind', { enum: ['conversation', 'case'] }).notNull(),
    state: text('state', { enum: ['sending', 'offered', 'accepted', 'declined', 'expired'] }).notNull(),
    caseId: uuid('case_id').references(() => cases.id, { onDelete: 'set null' }),
    conversationId: uuid('conversation_id').references(() => conversations.id, { onDelete: 'set null' }),
    remoteReference: text('remote_reference'),
    /** Outbound: the group the work came from; inbound: the group the partner's routing rules chose. */
    groupId: uuid('group_id').references(() => groups.id, { onDelete: 'set null' }),
    /** Outbound: who held the work when it was offered. */
    offeredBy: uuid('offered_by').references(() => users.id, { onDelete: 'set null' }),
    serviceId: uuid('service_id'),
    note: text('note').notNull().default(''),
    reason: text('reason'),
    acceptedBy: text('accepted_by'),
    /** Inbound: exactly what crossed over (the sender's manifest applied). */
    shared: jsonb('shared').$type<SharedCase>(),
    expiresAt: ts('expires_at'),
    /** The next seq this side sends for this handoff (the partner's idempotency key is handoff id + seq). */
    outSeq: integer('out_seq').notNull().default(0),
    /** `status|stage` last mirrored either way: a change is sent only when it differs, so mirroring never echoes. */
    syncedState: text('synced_state'),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    decidedAt: ts('decided_at'),
  },
  (t) => [
    uniqueIndex('exchange_handoffs_uq').on(t.handoffId, t.direction),
    index('exchange_handoffs_conversation_ix').on(t.conversationId),
    index('exchange_handoffs_case_ix').on(t.caseId),
    index('exchange_handoffs_state_ix').on(t.agencyId, t.state),
  ],
);

/** Calls to partners, written in the same transaction as the change they announce; a worker delivers them in order. */
export const exchangeOutbox = pgTable(
  'exchange_outbox',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    partnerId: uuid('partner_id').notNull().references(() => exchangePartners.id, { onDelete: 'cascade' }),
    handoffId: uuid('handoff_id').notNull(),
    seq: integer('seq').notNull(),
    event: jsonb('event').$type<ExchangeEvent>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
    /** A worker holds the row until then; a crashed worker's claim lapses. */
    lockedUntil: ts('locked_until'),
    sentAt: ts('sent_at'),
    failedAt: ts('failed_at'),
    lastError: text('last_error'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('exchange_outbox_seq_uq').on(t.partnerId, t.handoffId, t.seq),
    index('exchange_outbox_due_ix').on(t.nextAttemptAt).where(sql`${t.sentAt} is null and ${t.failedAt} is null`),
  ],
);

/** Nonces of signed requests already seen, until they could no longer pass the time check: replays are refused on every node. */
export const exchangeNonces = pgTable(
  'exchange_nonces',
  {
    partnerId: uuid('partner_id').notNull().references(() => exchangePartners.id, { onDelete: 'cascade' }),
    nonce: text('nonce').notNull(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.partnerId, t.nonce] }), index('exchange_nonces_expires_ix').on(t.expiresAt)],
);

/** Events already applied, with the answer given: a retried call gets the same answer and changes nothing. */
export const exchangeInbox = pgTable(
  'exchange_inbox',
  {
    partnerId: uuid('partner_id').notNull().references(() => exchangePartners.id, { onDelete: 'cascade' }),
    idempotencyKey: text('idempotency_key').notNull(),
    response: jsonb('response').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.partnerId, t.idempotencyKey] })],
);
