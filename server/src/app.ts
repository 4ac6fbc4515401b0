import { createServer, type Server as HttpServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { rooms, type Health } from '@casebridge/shared';
import type { Database } from './db/client.js';
import { errorHandler, notFoundApi } from './http/error-handler.js';
import { resolvePrincipal } from './http/principal.js';
import { requestLog } from './http/request-log.js';
import { requestContext } from './lib/request-context.js';
import { Limiter, DEFAULT_LIMITS, type Limits, type LimiterStore } from './lib/rate-limit.js';
import type { Logger } from './lib/logger.js';
import { createMailer, type Mailer } from './lib/mailer.js';
import { AgencyRepository } from './modules/agencies/agency.repository.js';
import { AuditRepository } from './modules/audit/audit.repository.js';
import { auditRoutes } from './modules/audit/audit.routes.js';
import { auditorGate } from './modules/audit/auditor-gate.js';
import { PurgeSigner } from './modules/retention/purge-signer.js';
import { RetentionService, RetentionTimer } from './modules/retention/retention.service.js';
import { retentionRoutes } from './modules/retention/retention.routes.js';
import { PrivacyService } from './modules/privacy/privacy.service.js';
import { privacyRoutes } from './modules/privacy/privacy.routes.js';
import { SecureFields, SensitiveMasker } from './modules/sensitive/sensitive.service.js';
import { trustRoutes } from './modules/sensitive/sensitive.routes.js';
import { authRoutes } from './modules/auth/auth.routes.js';
import { SsoSettingsService } from './modules/sso/sso-settings.service.js';
import { SsoService } from './modules/sso/sso.service.js';
import { ssoRoutes } from './modules/sso/sso.routes.js';
import { AuthService } from './modules/auth/auth.service.js';
import { SessionRepository } from './modules/auth/session.repository.js';
import { CaseRepository } from './modules/cases/case.repository.js';
import { ConstituentRepository } from './modules/constituents/constituent.repository.js';
import { ConversationRepository } from './modules/conversations/conversation.repository.js';
import { conversationRoutes } from './modules/conversations/conversation.routes.js';
import { ConversationService } from './modules/conversations/conversation.service.js';
import { MessageRepository } from './modules/messages/message.repository.js';
import { MessageService } from './modules/messages/message.service.js';
import { AttachmentRepository } from './modules/attachments/attachment.repository.js';
import { AttachmentService } from './modules/attachments/attachment.service.js';
import { attachmentRoutes } from './modules/attachments/attachment.routes.js';
import { UserRepository } from './modules/users/user.repository.js';
import { WidgetTokens } from './modules/widget/widget-token.js';
import { widgetRoutes } from './modules/widget/widget.routes.js';
import { WidgetService } from './modules/widget/widget.service.js';
import { AvailabilityService } from './modules/availability/availability.service.js';
import { QueueService } from './modules/queue/queue.service.js';
import { createIo } from './realtime/io.js';
import { CaseService } from './modules/cases/case.service.js';
import { PortalCodeRepository } from './modules/portal/portal-code.repository.js';
import { portalRoutes } from './modules/portal/portal.routes.js';
import { PortalService } from './modules/portal/portal.service.js';
import { agencyRoutes } from './modules/agencies/agency.routes.js';
import { ReportRepository } from './modules/reports/report.repository.js';
import { ReportService } from './modules/reports/report.service.js';
import { DashboardRepository } from './modules/dashboard/dashboard.repository.js';
import { DashboardService } from './modules/dashboard/dashboard.service.js';
import { Router } from './modules/routing/router.js';
import { SecretBox } from './lib/secret-box.js';
import { TwilioSettingsService } from './modules/twilio/twilio-settings.service.js';
import { TwilioClients } from './modules/twilio/twilio-client.js';
import { StaffAccessService } from './modules/staff/staff-access.service.js';
import { CallRepository } from './modules/voice/call.repository.js';
import { CallService } from './modules/voice/call.service.js';
import { OutgoingCalls } from './modules/voice/outgoing.js';
import { VoiceSettingsService } from './modules/voice/voice-settings.service.js';
import { voiceApiRoutes, voiceWebhookRoutes } from './modules/voice/voice.routes.js';
import { SmsInboundService } from './modules/twilio/sms-inbound.service.js';
import { SmsOutboundService } from './modules/twilio/sms-outbound.service.js';
import { TextLinkService } from './modules/twilio/text-link.service.js';
import { twilioApiRoutes, twilioWebhookRoutes } from './modules/twilio/twilio.routes.js';
import { RoutingRulesService } from './modules/routing/routing-rules.service.js';
import { routingRoutes } from './modules/routing/routing.routes.js';
import { RoutingRepository } from './modules/routing/routing.repository.js';
import { CaseTimers } from './modules/cases/case-timers.js';
import { SlaRepository } from './modules/sla/sla.repository.js';
import { SlaService } from './modules/sla/sla.service.js';
import { TaskRepository } from './modules/tasks/task.repository.js';
import { CaseTypeRepository } from './modules/case-types/case-type.repository.js';
import { CaseTypeService } from './modules/case-types/case-type.service.js';
import { caseTypeRoutes } from './modules/case-types/case-type.routes.js';
import { caseRoutes } from './modules/cases/case.routes.js';
import { PresenceService } from './modules/staff/presence.service.js';
import { staffRoutes } from './modules/staff/staff.routes.js';
import { createNotifier, type Notifier } from './realtime/notifier.js';
import { ExchangeRepository } from './modules/exchange/exchange.repository.js';
import { exchangeInboundRoutes, exchangeRoutes } from './modules/exchange/exchange.routes.js';
import { ExchangeService } from './modules/exchange/exchange.service.js';
import type { AppServer, SocketData } from './realtime/types.js';
import { placeholderRoutes, staticRoutes, type StaticDirs } from './http/static.js';

export interface AppOptions {
  database: Database;
  /** Outgoing email; absent means none (nothing offers to send email). */
  mailer?: Mailer;
  logger: Logger;
  publicBaseUrl: string;
  sessionSecret: string;
  sessionIdleMs: number;
  sessionMaxMs: number;
  trustProxy?: boolean;
  limits?: Partial<Limits>;
  /** How often open staff sockets re-check their session; explicit revocations are pushed at once. */
  sessionRecheckMs?: number;
  version?: string;
  realtimeKind?: Health['realtime'];
  /** Built assets (widget, demo page) and the SvelteKit handler; absent in API-only tests. */
  staticDirs?: StaticDirs;
  webHandler?: RequestHandler;
  /** How long a staff member may be without a socket before they show as offline (a reload is not leaving). */
  presenceGraceMs?: number;
  /** Demo mode: without SMTP, portal codes are written to the log so the portal can be tried. */
  demoMode?: boolean;
  /** The clock SLA and case timers read; tests move it. */
  now?: () => Date;
  /** How often SLA alerts and reopen windows are checked; 0 turns the timer off (tests call tick). */
  caseTimerMs?: number;
  /** Several nodes: rate limits are counted in this Redis client (node-redis), shared by every node. */
  limiterStore?: LimiterStore;
  /** Twilio's REST API host; unset means Twilio itself (tests give a local fake). */
  twilioApiBaseUrl?: string;
  /** Benchmarks only (BENCH_METRICS): GET /api/health/metrics with event-loop delay, CPU and memory. */
  metrics?: boolean;
  /** Other origins that serve our own pages (demo mode: http://127.0.0.1:PORT next to localhost). */
  extraOwnOrigins?: string[];
  /** How often the Service Exchange outbox is swept (retries, lapsed offers); 0 turns the timer off. */
  exchangeTimerMs?: number;
}

export interface App {
  app: Express;
  httpServer: HttpServer;
  io: AppServer;
  notifier: Notifier;
  services: {
    /** Service Exchange (#10): partners, handoffs, the outbox worker. */
    exchange: ExchangeService;
    availability: AvailabilityService;
    auth: AuthService;
    widget: WidgetService;
    conversations: ConversationService;
    messages: MessageService;
    cases: CaseService;
    sla: SlaService;
    timers: CaseTimers;
    presence: PresenceService;
    router: Router;
    /** Retention runs and legal hold (issue #11); tests call run() with a moved clock. */
    retention: RetentionService;
  };
}

/** The advisory-lock key under which one node at a time runs the case timers. */
const TIMERS_LOCK = 724312;
/** Its own key: a try-lock shared with the case timers would make one of the two skip its turn. */
const EXCHANGE_LOCK = 724313;

/** Builds Express + Socket.IO and wires every module. Listens nowhere, reads no environment. */
export function createApp(o: AppOptions): App {
  const db = o.database.db;
  const publicOrigin = new URL(o.publicBaseUrl).origin;
  // Origins our own pages are served from: the public one, plus loopback aliases in demo mode.
  const ownOrigins = [...new Set([publicOrigin, ...(o.extraOwnOrigins ?? [])])];
  const secureCookies = publicOrigin.startsWith('https:');
  const limits = { ...DEFAULT_LIMITS, ...o.limits };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', o.trustProxy ?? false);
  const httpServer = createServer(app);

  const repos = {
    agencies: new AgencyRepository(db),
    audit: new AuditRepository(db),
    sessions: new SessionRepository(db),
    users: new UserRepository(db),
    cases: new CaseRepository(db, { reserveOutsideTransactions: o.database.kind !== 'pglite' }),
    constituents: new ConstituentRepository(db),
    conversations: new ConversationRepository(db),
    // Three batches of messages in flight on PostgreSQL (of a pool of ten); PGlite has one connection.
    messages: new MessageRepository(db, { writers: o.database.kind === 'pglite' ? 1 : 3 }),
    attachments: new AttachmentRepository(db),
    caseTypes: new CaseTypeRepository(db),
    tasks: new TaskRepository(db),
    portalCodes: new PortalCodeRepository(db),
    slas: new SlaRepository(db),
  };
  // Issue #11: sensitive numbers are masked in what constituents write, on every channel.
  const masker = new SensitiveMasker({ db, audit: repos.audit });
  const caseTypes = new CaseTypeService({ caseTypes: repos.caseTypes, agencies: repos.agencies, audit: repos.audit });

  // The notifier needs the Socket.IO server, which needs the services: bind it late.
  let notifier: Notifier | undefined;
  // Service Exchange (#10): built last; case and conversation changes are mirrored to partner agencies.
  let exchange: ExchangeService | undefined;
  const lateNotifier: Notifier = {
    messageCreated: (...a) => {
      notifier?.messageCreated(...a);
      // Also messages stored outside the send path (texts arriving by SMS): a handed-over thread crosses over.
      exchange?.messageCreated(a[0], a[1]);
    },
    messageDelivery: (...a) => notifier?.messageDelivery(...a),
    accessChanged: (...a) => notifier?.accessChanged(...a),
    conversationCreated: (...a) => notifier?.conversationCreated(...a),
    conversationUpdated: (...a) => {
      notifier?.conversationUpdated(...a);
      void exchange?.conversationChanged(a[0]).catch((err: unknown) => o.logger.warn({ err }, 'exchange mirror failed'));
    },
    typing: (...a) => notifier?.typing(...a),
    sessionEnded: (...a) => notifier?.sessionEnded(...a),
    receiptChanged: (...a) => notifier?.receiptChanged(...a),
    queuePosition: (...a) => notifier?.queuePosition(...a),
    presenceChanged: (...a) => notifier?.presenceChanged(...a),
    mentioned: (...a) => notifier?.mentioned(...a),
    caseUpdated: (...a) => {
      notifier?.caseUpdated(...a);
      void exchange?.caseChanged(a[1].caseId).catch((err: unknown) => o.logger.warn({ err }, 'exchange mirror failed'));
    },
    slaAlert: (...a) => notifier?.slaAlert(...a),
  };

  // Issue #11: sign-in through the agency's OpenID Connect provider; agencies may turn local passwords off.
  const ssoRedirectUri = `${o.publicBaseUrl.replace(/\/+$/, '')}/api/auth/sso/callback`;
  const ssoSettings = new SsoSettingsService({ db, box: new SecretBox(o.sessionSecret, 'oidc-client'), audit: repos.audit, redirectUri: ssoRedirectUri });
  const sso = new SsoService({ db, settings: ssoSettings, sessions: repos.sessions, audit: repos.audit, logger: o.logger, redirectUri: ssoRedirectUri, sessionMaxMs: o.sessionMaxMs });
  const auth = new AuthService({
    passwordsAllowed: (agencyId) => ssoSettings.passwordsAllowed(agencyId),
    sessions: repos.sessions,
    users: repos.users,
    audit: repos.audit,
    events: lateNotifier,
    loginFailuresPerIp: new Limiter('login-ip', limits.loginFailuresPerIp, o.limiterStore),
    loginFailuresPerAccount: new Limiter('login-account', limits.loginFailuresPerAccount, o.limiterStore),
    idleMs: o.sessionIdleMs,
    maxMs: o.sessionMaxMs,
  });
  // Filled in once Socket.IO exists: counts agents connected in a group on every node.
  let onlineAgents: (groupId: string) => Promise<number> = async () => 0;
  const mailer = o.mailer ?? createMailer({ from: 'CaseBridge <no-reply@casebridge.invalid>' });
  const availability = new AvailabilityService({
    agencies: repos.agencies,
    onlineAgents: (g) => onlineAgents(g),
    emailEnabled: mailer.enabled,
  });
  const widget = new WidgetService({
    availability,
    agencies: repos.agencies,
    constituents: repos.constituents,
    tokens: new WidgetTokens(o.sessionSecret),
    widgetSessionsPerIp: new Limiter('widget-session-ip', limits.widgetSessionsPerIp, o.limiterStore),
    ownOrigins,
  });
  const clock = o.now ?? (() => new Date());
  const sla = new SlaService({
    db,
    slas: repos.slas,
    agencies: repos.agencies,
    notifier: lateNotifier,
    addEvent: (caseId, kind, data) => repos.cases.addEvent(db, { caseId, kind, actorKind: 'system', data }),
    now: clock,
  });
  const queue = new QueueService({ conversations: repos.conversations, notifier: lateNotifier });
  // Bound once the router exists (it needs the conversation service's repositories and the notifier).
  let router: Router | undefined;
  let voiceCalls: CallService | undefined;
  const routeSoon = (fn: (r: Router) => Promise<unknown>) => {
    if (router) void fn(router).catch((err: unknown) => o.logger.warn({ err }, 'routing failed; the timers retry'));
  };
  const routingRules = new RoutingRulesService({ db, audit: repos.audit });
  const twilioSettings = new TwilioSettingsService({ db, box: new SecretBox(o.sessionSecret, 'twilio'), audit: repos.audit });
  const twilioClients = new TwilioClients(o.twilioApiBaseUrl);
  const smsOutbound = new SmsOutboundService({
    settings: twilioSettings,
    clients: twilioClients,
    messages: repos.messages,
    conversations: repos.conversations,
    constituents: repos.constituents,
    notifier: lateNotifier,
    logger: o.logger,
    now: clock,
  });
  const conversations = new ConversationService({
    sensitive: masker,
    decideRoute: (agencyId, facts, fallback) => routingRules.decide(agencyId, facts, fallback),
    constituentReplied: (caseId): Promise<void> => cases.constituentReplied(caseId),
    routing: {
      queueChanged: (groupId) => routeSoon((r) => r.dispatch(groupId)),
      agentFreed: (userId) => routeSoon((r) => r.agentFreed(userId)),
    },
    db,
    caseStarted: (tx, kase): Promise<void> => cases.started(tx, kase),
    conversations: repos.conversations,
    messages: repos.messages,
    cases: repos.cases,
    constituents: repos.constituents,
    agencies: repos.agencies,
    users: repos.users,
    caseTypes,
    audit: repos.audit,
    notifier: lateNotifier,
    queue,
    conversationsPerSession: limits.conversationsPerSession,
    mailer,
    transcriptEmails: new Limiter('transcript-email', limits.transcriptEmailsPerConversation, o.limiterStore),
    callAssigned: (id, userId) => void voiceCalls?.bridgeSoon(id, userId),
    callEnded: (id, userId) => void voiceCalls?.hangUp(id, userId),
    texts: smsOutbound,
    agentReady: (conversationId, agentName): Promise<void> => textLink.agentReady(conversationId, agentName),
  });
  const attachments = new AttachmentService({
    conversations,
    attachments: repos.attachments,
    uploadsPerConstituent: limits.uploadsPerConstituent,
  });
  const messages = new MessageService({
    sensitive: masker,
    conversations,
    messages: repos.messages,
    attachments,
    attachmentRefs: repos.attachments,
    notifier: lateNotifier,
    staff: repos.users,
    constituentReplied: (caseId) => cases.constituentReplied(caseId),
    agentReplied: (caseId) => cases.agentReplied(caseId),
    messagesPerSession: new Limiter('messages-session', limits.messagesPerSession, o.limiterStore),
    texts: smsOutbound,
    relay: { messageCreated: (m, c) => exchange?.messageCreated(m, c) },
  });
  const secureFields = new SecureFields({
    db,
    conversations,
    messages: repos.messages,
    notifier: lateNotifier,
    audit: repos.audit,
    box: new SecretBox(o.sessionSecret, 'secure-field'),
  });
  const smsInbound = new SmsInboundService({
    db,
    sensitive: masker,
    decideRoute: (agencyId, facts, fallback) => routingRules.decide(agencyId, facts, fallback),
    caseStarted: (tx, kase): Promise<void> => cases.started(tx, kase),
    constituentReplied: (caseId): Promise<void> => cases.constituentReplied(caseId),
    routing: { queueChanged: (groupId) => routeSoon((r) => r.dispatch(groupId)), agentFreed: (userId) => routeSoon((r) => r.agentFreed(userId)) },
    now: clock,
    agencies: repos.agencies,
    constituents: repos.constituents,
    conversations: repos.conversations,
    messages: repos.messages,
    cases: repos.cases,
    attachments: repos.attachments,
    audit: repos.audit,
    notifier: lateNotifier,
    queue,
    caseChanged: (kase) => cases.announceCase(kase),
  });
  const textLink = new TextLinkService({
    db,
    conversations,
    conversationRows: repos.conversations,
    constituents: repos.constituents,
    messages: repos.messages,
    cases: repos.cases,
    settings: twilioSettings,
    outbound: smsOutbound,
    audit: repos.audit,
    notifier: lateNotifier,
  });

  const cases = new CaseService({
    db,
    cases: repos.cases,
    caseTypes,
    constituents: repos.constituents,
    agencies: repos.agencies,
    tellConstituent: (caseId, say): Promise<boolean> => conversations.tellConstituent(caseId, say),
    audit: repos.audit,
    notifier: lateNotifier,
    tasks: repos.tasks,
    sla,
    now: clock,
    staffInAgency: async (agencyId, userId) => (await repos.users.findById(userId))?.agencyId === agencyId,
    mailer,
    publicBaseUrl: o.publicBaseUrl,
  });
  const portal = new PortalService({
    db,
    agencies: repos.agencies,
    cases: repos.cases,
    caseService: cases,
    caseTypes,
    constituents: repos.constituents,
    conversations,
    messages,
    messageRows: repos.messages,
    attachmentRefs: repos.attachments,
    codes: repos.portalCodes,
    secureFields,
    widget,
    mailer,
    audit: repos.audit,
    logger: o.logger,
    secret: o.sessionSecret,
    publicBaseUrl: o.publicBaseUrl,
    demoMode: o.demoMode ?? false,
    codesPerIp: new Limiter('portal-codes-ip', limits.portalCodesPerIp, o.limiterStore),
    signInsPerIp: new Limiter('portal-sign-in-ip', limits.portalSignInsPerIp, o.limiterStore),
    requestsPerIp: new Limiter('portal-requests-ip', limits.portalRequestsPerIp, o.limiterStore),
    now: clock,
    decideRoute: (agencyId, facts, fallback) => routingRules.decide(agencyId, facts, fallback),
    texts: smsOutbound,
  });
  // SLA alerts, closing resolved cases, routing sweeps and stalled texts: a timer on every node, run by one at a time.
  const timers = new CaseTimers({
    sla,
    cases,
    sweepQueues: async () => (router ? (await router.expireUnaccepted()) + (await router.sweep()) : 0),
    sweepTexts: () => smsOutbound.sweep(),
    exclusive: (fn) => o.database.exclusive(TIMERS_LOCK, fn),
    logger: o.logger,
    intervalMs: o.caseTimerMs ?? 15_000,
  });
  // Issue #11: closed cases past their type's retention period lose their data (not on legal hold), hourly,
  // on one node at a time (the timers' lock); each run that purges writes a signed report.
  const retention = new RetentionService({ db, audit: repos.audit, signer: new PurgeSigner(o.sessionSecret), logger: o.logger, now: clock });
  const retentionTimer = new RetentionTimer({
    retention,
    exclusive: (fn) => o.database.exclusive(TIMERS_LOCK, fn),
    logger: o.logger,
    intervalMs: (o.caseTimerMs ?? 15_000) > 0 ? 60_000 : 0,
  });
  retentionTimer.start();
  httpServer.on('close', () => retentionTimer.stop());
  // Filled in once Socket.IO exists: whether a user has a socket on any node.
  let userConnected: (userId: string) => Promise<boolean> = async () => false;
  const presence = new PresenceService({
    users: repos.users,
    conversations: repos.conversations,
    notifier: lateNotifier,
    isConnected: (id) => userConnected(id),
    offlineGraceMs: o.presenceGraceMs ?? 5_000,
    becameAvailable: (userId) => routeSoon((r) => r.agentFreed(userId)),
    wentOffline: (userId) => routeSoon((r) => r.agentWentOffline(userId)),
    audit: repos.audit,
  });
  router = new Router({
    db,
    routing: new RoutingRepository(db),
    conversations: repos.conversations,
    cases: repos.cases,
    notifier: lateNotifier,
    announceQueue: (groupId) => queue.announce(groupId),
    logger: o.logger,
    now: clock,
    setAway: (userId) => presence.markAway(userId),
    unassignCase: (tx, caseId, userId) => repos.cases.unassign(tx, caseId, userId),
    callAssigned: (id, userId) => void voiceCalls?.bridgeSoon(id, userId),
    agentReady: (conversationId, agentName) => textLink.agentReady(conversationId, agentName),
    audit: repos.audit,
  });
  // Phone calls: the IVR, the queue, putting callers through to agents, recordings (issue #7, voice).
  const voiceSettings = new VoiceSettingsService({ db, box: new SecretBox(o.sessionSecret, 'twilio'), audit: repos.audit });
  voiceCalls = new CallService({
    db,
    sensitive: masker,
    calls: new CallRepository(db),
    conversations: repos.conversations,
    cases: repos.cases,
    constituents: repos.constituents,
    agencies: repos.agencies,
    caseTypes: repos.caseTypes,
    tasks: repos.tasks,
    audit: repos.audit,
    voiceSettings,
    twilioAgency: (agencyId) => twilioSettings.byAgency(agencyId),
    clients: twilioClients,
    apiBaseUrl: o.twilioApiBaseUrl,
    decideRoute: (agencyId, facts, fallback) => routingRules.decide(agencyId, facts, fallback),
    caseStarted: (tx, kase): Promise<void> => cases.started(tx, kase),
    notifier: lateNotifier,
    routing: {
      queueChanged: (groupId) => routeSoon((r) => r.dispatch(groupId)),
      agentFreed: (userId) => routeSoon((r) => r.agentFreed(userId)),
    },
    announceQueue: (groupId) => queue.announce(groupId),
    setAway: (userId) => presence.markAway(userId),
    agentAnswered: (caseId) => cases.agentReplied(caseId),
    logger: o.logger,
    now: clock,
  });

  const exchangeRepo = new ExchangeRepository(db);
  const exchangeBox = new SecretBox(o.sessionSecret, 'exchange');
  exchange = new ExchangeService({
    db,
    repo: exchangeRepo,
    box: exchangeBox,
    audit: repos.audit,
    cases: repos.cases,
    caseTypes,
    conversations: repos.conversations,
    conversationService: conversations,
    messages: repos.messages,
    constituents: repos.constituents,
    agencies: repos.agencies,
    decideRoute: (agencyId, facts, fallback) => routingRules.decide(agencyId, facts, fallback),
    caseStarted: (tx, kase): Promise<void> => cases.started(tx, kase),
    announceCase: (kase) => cases.announceCase(kase),
    notifier: lateNotifier,
    queue,
    routing: { queueChanged: (groupId) => routeSoon((r) => r.dispatch(groupId)), agentFreed: (userId) => routeSoon((r) => r.agentFreed(userId)) },
    texts: smsOutbound,
    logger: o.logger,
    now: clock,
    exclusive: (fn) => o.database.exclusive(EXCHANGE_LOCK, fn),
    intervalMs: o.exchangeTimerMs ?? 2_000,
  });

  app.use(requestLog(o.logger));
  app.use(requestContext());
  app.use(
    helmet({
      // Pages set their own policy (SvelteKit, the widget iframe); the API's is below.
      contentSecurityPolicy: false,
      crossOriginEmbedderPolicy: false,
      hsts: secureCookies ? { maxAge: 31536000, includeSubDomains: true } : false,
      // Nothing but the widget iframe may be framed; that route replaces this with frame-ancestors.
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    }),
  );

  const resolvePrincipalEarly = resolvePrincipal({ auth, widget, ownOrigins, secureCookies });
  const api = express.Router();
  api.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  api.get('/health', async (_req, res) => {
    const up = await o.database.ping();
    const body: Health = {
      status: up ? 'ok' : 'degraded',
      database: o.database.kind,
      realtime: o.realtimeKind ?? 'single-node',
      version: o.version ?? '0.0.0',
    };
    res.status(up ? 200 : 503).json(body);
  });
  if (o.metrics) api.get('/health/metrics', benchMetrics());
  // Uploads read their own raw body, so they come before the JSON parser.
  api.use(resolvePrincipalEarly);
  // Auditors (issue #11) reach the audit log and purge reports only, whatever routes exist below.
  api.use(auditorGate());
  api.use(attachmentRoutes({ attachments }));
  api.use(express.json({ limit: '64kb' }));
  api.use(authRoutes({ auth, secureCookies }));
  api.use(ssoRoutes({ sso, settings: ssoSettings, audit: repos.audit, secureCookies, publicBaseUrl: o.publicBaseUrl }));
  api.use(
    widgetRoutes({
      widget,
      conversations,
      conversationsPerIp: new Limiter('conversations-ip', limits.conversationsPerIp, o.limiterStore),
    }),
  );
  api.use(conversationRoutes({ conversations, messages }));
  api.use(caseRoutes({ cases }));
  api.use(caseTypeRoutes({ caseTypes }));
  const staffAccess = new StaffAccessService({
    users: repos.users,
    sessions: repos.sessions,
    audit: repos.audit,
    notifier: lateNotifier,
    sessionsEnded: (userId) => lateNotifier.sessionEnded({ userId }, 'revoked'),
  });
  api.use(
    staffRoutes({
      presence,
      agencies: repos.agencies,
      dashboard: new DashboardService({ dashboard: new DashboardRepository(db), agencies: repos.agencies, now: clock }),
      reports: new ReportService({ reports: new ReportRepository(db), agencies: repos.agencies }),
      access: staffAccess,
      audit: repos.audit,
    }),
  );
  api.use(portalRoutes({ portal }));
  api.use(twilioApiRoutes({ settings: twilioSettings, outbound: smsOutbound, conversations, textLink }));
  api.use(routingRoutes({ rules: routingRules, caseTypes, agencies: repos.agencies }));
  api.use(
    agencyRoutes({
      agencies: repos.agencies,
      audit: repos.audit,
      routingChanged: (groupId) => routeSoon((r) => r.dispatch(groupId)),
      groupCreated: (agencyId, groupId) => void staffAccess.groupAdded(agencyId, groupId).catch(() => undefined),
    }),
  );
  api.use(voiceApiRoutes({ settings: voiceSettings, calls: voiceCalls }));
  api.use(auditRoutes({ audit: repos.audit }));
  api.use(exchangeRoutes({ exchange }));
  api.use(retentionRoutes({ retention }));
  api.use(privacyRoutes({ privacy: new PrivacyService({ db, audit: repos.audit, retention, conversations, now: clock }) }));
  api.use(trustRoutes({ masker, secureFields }));
  api.use(notFoundApi);
  app.use('/api', api);
  // Partner agencies call this one fixed, signed endpoint (no session, no cookies).
  app.use(
    exchangeInboundRoutes({
      exchange,
      repo: exchangeRepo,
      box: exchangeBox,
      audit: repos.audit,
      logger: o.logger,
      refusals: new Limiter('exchange-refusals-ip', { points: 100, duration: 600 }, o.limiterStore),
    }),
  );
  app.use(
    twilioWebhookRoutes({
      settings: twilioSettings,
      clients: twilioClients,
      inbound: smsInbound,
      outbound: smsOutbound,
      audit: repos.audit,
      logger: o.logger,
      agencyName: async (agencyId) => (await repos.agencies.findById(agencyId))?.name ?? 'We',
    }),
  );
  app.use(voiceWebhookRoutes({ settings: twilioSettings, voiceSettings, calls: voiceCalls, outgoing: new OutgoingCalls(db), audit: repos.audit, logger: o.logger }));
  app.use(placeholderRoutes());
  if (o.staticDirs) {
    app.use(
      staticRoutes(o.staticDirs, async (key) => {
        const agency = key ? await repos.agencies.findByWidgetKey(key) : undefined;
        return agency ? [...new Set([...ownOrigins, ...agency.allowedOrigins])] : ownOrigins;
      }),
    );
  }
  // SvelteKit routes itself (/console, /portal); mounted at the root so its paths stay whole.
  if (o.webHandler) app.use(o.webHandler);
  app.use(errorHandler(o.logger, repos.audit));

  const io = createIo(httpServer, {
    auth,
    widget,
    conversations,
    messages,
    presence,
    logger: o.logger,
    ownOrigins,
    secureCookies,
    sessionRecheckMs: o.sessionRecheckMs ?? 30_000,
    audit: repos.audit,
  });
  notifier = createNotifier(io);
  // The adapter's own local fetch asks Redis for the node count first, so it cannot serve as the fallback.
  const localSockets = (room: string) =>
    [...(io.sockets.adapter.rooms.get(room) ?? [])].flatMap((id) => io.sockets.sockets.get(id) ?? []);
  // Live chat is staffed when an agent of the group is connected (on any node) and says they are available.
  onlineAgents = async (groupId) => {
    // Other nodes unreachable (Redis down): count this node's own sockets rather than fail the widget.
    const sockets: { data: SocketData }[] = await io
      .in(rooms.group(groupId))
      .fetchSockets()
      .catch(() => localSockets(rooms.group(groupId)));
    const connected = new Set(
      sockets.map((s) => s.data.principal).flatMap((p) => (p?.kind === 'staff' && p.role !== 'admin' ? [p.userId] : [])),
    );
    return (await repos.users.availableAmong([...connected])).length;
  };
  // Unknown counts as connected: an infrastructure fault must not take an agent's work away.
  userConnected = async (userId) =>
    io
      .in(rooms.user(userId))
      .fetchSockets()
      .then((s) => s.length > 0)
      .catch(() => true);

  return { app, httpServer, io, notifier, services: { availability, auth, widget, conversations, messages, cases, sla, timers, presence, retention, router: router!, exchange } };
}

/**
 * Benchmarks only (BENCH_METRICS=true, refused in production): this process's event-loop delay since the
 * previous call (ms), CPU time and memory. Each read starts a new window, so a benchmark phase reads its own.
 */
function benchMetrics(): RequestHandler {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  return (_req, res) => {
    // The histogram holds whole timer intervals: minus the 5 ms resolution is the delay.
    const ms = (ns: number) => Math.max(0, Math.round((ns - 5e6) / 1e4) / 100);
    const body = {
      eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max), samples: loop.count },
      cpuUsageUs: process.cpuUsage(),
      memory: process.memoryUsage(),
    };
    loop.reset();
    res.json(body);
  };
}
