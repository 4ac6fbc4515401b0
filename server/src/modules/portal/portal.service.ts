import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import {
  type Language,
  type PortalAgency,
  type PortalCase,
  type PortalRequest,
  type PortalSession,
  type PortalSignIn,
  type SendMessageResult,
} from '@casebridge/shared';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import type { Limiter } from '../../lib/rate-limit.js';
import { toIso } from '../../lib/time.js';
import type { AgencyRepository, AgencyRow } from '../agencies/agency.repository.js';
import type { AttachmentRepository } from '../attachments/attachment.repository.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { CaseTypeService } from '../case-types/case-type.service.js';
import type { CaseRepository, CaseRow } from '../cases/case.repository.js';
import type { CaseService } from '../cases/case.service.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import { toMessage } from '../conversations/conversation.mapper.js';
import type { ConversationDeps, ConversationService } from '../conversations/conversation.service.js';
import type { MessageRepository } from '../messages/message.repository.js';
import type { MessageService } from '../messages/message.service.js';
import type { ConstituentPrincipal } from '../principal.js';
import type { SecureFields } from '../sensitive/sensitive.service.js';
import type { WidgetService } from '../widget/widget.service.js';
import type { PortalCodeRepository } from './portal-code.repository.js';

export interface PortalDeps {
  db: Db;
  agencies: AgencyRepository;
  cases: CaseRepository;
  caseService: CaseService;
  caseTypes: CaseTypeService;
  constituents: ConstituentRepository;
  conversations: ConversationService;
  messages: MessageService;
  messageRows: MessageRepository;
  attachmentRefs: AttachmentRepository;
  codes: PortalCodeRepository;
  /** Open secure-field requests on a case (the sensitive module's service). */
  secureFields: Pick<SecureFields, 'openForCase'>;
  widget: WidgetService;
  mailer: Mailer;
  audit: AuditRepository;
  logger: Logger;
  /** Keys the code hashes: a stolen table of hashes cannot be brute-forced offline without it. */
  secret: string;
  publicBaseUrl: string;
  /** Demo without SMTP: codes are written to the server log so the portal can be tried. */
  demoMode: boolean;
  codesPerIp: Limiter;
  signInsPerIp: Limiter;
  requestsPerIp: Limiter;
  now?: () => Date;
  decideRoute: ConversationDeps['decideRoute'];
  /** Codes go by text to a case with a phone and no email, when the agency texts. */
  texts?: { sendOneOff(agencyId: string, to: string, body: string): Promise<boolean> };
}

const CODE_TTL_MS = 10 * 60_000;
const MAX_TRIES = 5;
/** Codes one case may be sent per quarter hour. */
const CODES_PER_CASE = 3;
const SESSION_TTL_MS = 2 * 3600_000;

const notRight = () => invalid('code', 'That code is not right. Check it, or ask for a new one.');

function invalid(field: string, message: string): AppError {
  return new AppError('INVALID_PAYLOAD', message, { issues: [{ path: [field], message }] });
}

/**
 * The constituent portal. A case is opened with its reference and a one-time code sent to the email on the case,
 * never with the reference alone; the visitor then holds a short-lived constituent token and sees only public
 * messages of their own cases.
 */
export class PortalService {
  constructor(private readonly d: PortalDeps) {}

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  private hash(caseId: string, code: string): string {
    return createHmac('sha256', this.d.secret).update(`portal-code:${caseId}:${code}`).digest('hex');
  }

  private async agency(slug: string): Promise<AgencyRow> {
    const agency = await this.d.agencies.findBySlug(slug);
    if (!agency) throw new AppError('NOT_FOUND', 'Unknown agency');
    return agency;
  }

  async agencies(): Promise<{ slug: string; name: string }[]> {
    return this.d.agencies.list();
  }

  /** The agency's name and its portal catalog, each service with its up-front questions. */
  async catalog(slug: string, lang: Language): Promise<PortalAgency> {
    const agency = await this.agency(slug);
    return { slug: agency.slug, name: agency.name, services: await this.d.caseTypes.publicCatalog(agency.id, 'portal', lang) };
  }

  /**
   * Sends a code to the email on the case. The answer is the same whether or not the reference exists, so the
   * portal cannot be used to find out which references are real.
   */
  async requestCode(input: { agency: string; reference: string; language: Language }, ip: string): Promise<void> {
    await this.d.codesPerIp.consume(ip, 'Too many codes asked for from this network. Please wait and try again.');
    const agency = await this.agency(input.agency);
    const kase = await this.d.cases.findByReference(agency.id, input.reference);
    const who = kase ? await this.d.cases.constituentOf(kase) : undefined;
    const email = who?.person.email;
    const phone = who?.person.phone;
    if (!kase || (!email && !phone)) return;
    const since = new Date(this.now().getTime() - 15 * 60_000).toISOString();
    if ((await this.d.codes.countSince(kase.id, since)) >= CODES_PER_CASE) return;
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await this.d.codes.create(kase.id, this.hash(kase.id, code), new Date(this.now().getTime() + CODE_TTL_MS).toISOString());
    const es = input.language === 'es';
    let via: 'email' | 'sms' | 'log' | 'none' = 'none';
    if (!email && phone) {
      const text = es
        ? `${agency.name}: su código para el caso ${kase.reference} es ${code}. Vence en 10 minutos.`
        : `${agency.name}: your code for case ${kase.reference} is ${code}. It expires in 10 minutes.`;
      if (await this.d.texts?.sendOneOff(agency.id, phone, text)) via = 'sms';
    } else if (email && this.d.mailer.enabled) {
      via = 'email';
      await this.d.mailer.send({
        to: email,
        subject: es ? `Su código para el caso ${kase.reference}` : `Your code for case ${kase.reference}`,
        text: es
          ? `Su código de un solo uso es ${code}. Vence en 10 minutos. Si no lo pidió, ignore este mensaje.\n\n${agency.name}`
          : `Your one-time code is ${code}. It expires in 10 minutes. If you did not ask for it, ignore this email.\n\n${agency.name}`,
      });
    }
    if (via === 'none' && this.d.demoMode) {
      via = 'log';
      this.d.logger.warn({ reference: kase.reference, code }, 'demo mode without SMTP or texting: portal code written here instead');
    }
    await this.d.audit.record({
      agencyId: agency.id,
      actorKind: 'anonymous',
      actorId: null,
      action: 'portal.code_sent',
      objectType: 'case',
      objectId: kase.id,
      outcome: 'success',
      sourceIp: ip,
      detail: { via },
    });
  }

  async signIn(input: z.output<typeof PortalSignIn>, ip: string): Promise<PortalSession> {
    await this.d.signInsPerIp.consume(ip, 'Too many tries from this network. Please wait and try again.');
    const agency = await this.agency(input.agency);
    const kase = await this.d.cases.findByReference(agency.id, input.reference);
    const code = kase ? await this.d.codes.latestUnused(kase.id) : undefined;
    const fail = async (err: AppError) => {
      await this.d.audit.record({
        agencyId: agency.id,
        actorKind: 'anonymous',
        actorId: null,
        action: 'portal.sign_in',
        objectType: 'case',
        objectId: kase?.id,
        outcome: 'denied',
        sourceIp: ip,
        detail: { reason: err.code },
      });
      return err;
    };
    if (!kase || !kase.constituentId || !code) throw await fail(notRight());
    if (code.attempts >= MAX_TRIES) {
      throw await fail(new AppError('RATE_LIMITED', 'Too many wrong codes. Ask for a new one.', { retryAfterMs: 60_000 }));
    }
    if (new Date(code.expiresAt).getTime() <= this.now().getTime()) {
      throw await fail(invalid('code', 'That code has expired. Ask for a new one.'));
    }
    const expected = Buffer.from(code.codeHash, 'hex');
    const given = Buffer.from(this.hash(kase.id, input.code), 'hex');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      await this.d.codes.failedAttempt(code.id);
      throw await fail(notRight());
    }
    if (!(await this.d.codes.use(code.id))) throw await fail(notRight());
    const token = await this.d.widget.issueFor(agency.id, kase.constituentId, SESSION_TTL_MS);
    await this.d.audit.record({
      agencyId: agency.id,
      actorKind: 'constituent',
      actorId: kase.constituentId,
      action: 'portal.sign_in',
      objectType: 'case',
      objectId: kase.id,
      outcome: 'success',
      sourceIp: ip,
    });
    return { token, reference: kase.reference };
  }

  /** One of the visitor's own cases; anything else is not found. */
  private async ownCase(p: ConstituentPrincipal, reference: string): Promise<CaseRow> {
    const kase = await this.d.cases.findByReference(p.agencyId, reference.trim().toUpperCase());
    if (!kase || kase.constituentId !== p.constituentId) throw new AppError('NOT_FOUND', 'Case not found');
    return kase;
  }

  async view(p: ConstituentPrincipal, reference: string): Promise<PortalCase> {
    const kase = await this.ownCase(p, reference);
    const type = kase.caseTypeId ? await this.d.caseTypes.get(kase.agencyId, kase.caseTypeId) : undefined;
    const closed = kase.status === 'closed' || kase.status === 'cancelled';
    const [rows, events, secureRequests] = await Promise.all([
      this.d.messageRows.listPublicForCase(kase.id),
      this.d.cases.timeline(kase.id),
      // A closed case asks for nothing more (and retention will remove what it holds).
      closed ? [] : this.d.secureFields.openForCase(kase.id),
    ]);
    const refs = await this.d.attachmentRefs.refsByMessage(rows.map((r) => r.id));
    return {
      reference: kase.reference,
      title: kase.title,
      status: kase.status,
      stage: kase.stage,
      awaiting: kase.status === 'awaiting_info' ? kase.awaitingRequest : null,
      caseType: type?.name ?? null,
      messages: rows.map((m) => toMessage(m, refs.get(m.id))),
      secureRequests,
      notices: events
        .filter(({ event: e }) => e.kind === 'constituent.notified')
        .map(({ event: e }) => ({ body: String(e.data.body ?? ''), createdAt: toIso(e.createdAt) })),
      createdAt: toIso(kase.createdAt),
      updatedAt: toIso(kase.updatedAt),
    };
  }

  /** The conversation portal replies and uploads go to (opened on first use). */
  async conversationFor(p: ConstituentPrincipal, reference: string): Promise<string> {
    const kase = await this.ownCase(p, reference);
    if (kase.status === 'closed' || kase.status === 'cancelled') {
      throw new AppError('CONFLICT', 'This case is closed. Start a new request if you need more help.');
    }
    const who = await this.d.cases.constituentOf(kase);
    const lang = who?.person.language === 'es' ? 'es' : 'en';
    return (await this.d.conversations.portalConversation(p, kase, lang)).id;
  }

  async reply(
    p: ConstituentPrincipal,
    reference: string,
    input: { clientMessageId: string; body: string; attachmentIds?: string[] },
  ): Promise<SendMessageResult> {
    const conversationId = await this.conversationFor(p, reference);
    return this.d.messages.send(p, { conversationId, visibility: 'public', ...input });
  }

  /** A request from the catalog, without chat: a typed case with its playbook and SLA, and a confirmation email. */
  async startRequest(input: z.output<typeof PortalRequest>, ip: string): Promise<{ reference: string }> {
    await this.d.requestsPerIp.consume(ip, 'Too many requests from this network. Please wait and try again.');
    const agency = await this.agency(input.agency);
    const service = await this.d.caseTypes.findPublished(agency.id, input.serviceId, 'portal');
    if (!service) throw invalid('serviceId', 'Choose a service from the list');
    const type = await this.d.caseTypes.get(agency.id, service.caseTypeId);
    if (!type) throw invalid('serviceId', 'Choose a service from the list');
    const answers = await this.d.caseTypes.answersFor(agency.id, service, input.answers);
    const route = await this.d.decideRoute(
      agency.id,
      {
        serviceId: service.id,
        caseTypeId: type.id,
        channel: 'portal',
        language: input.language,
        priority: type.defaultPriority,
        returning: () => this.d.constituents.hasCasesByEmail(agency.id, input.email),
      },
      type.defaultGroupId ?? (await this.d.agencies.defaultGroupId(agency.id)) ?? null,
    );
    const groupId = route.groupId;
    const title = `Portal request: ${(input.language === 'es' && service.title.es) || service.title.en}`;

    const year = this.now().getUTCFullYear();
    const reserved = await this.d.cases.reserveReference(agency.id, type.prefix, year);
    const kase = await this.d.db.transaction(async (tx) => {
      const constituentId = await this.d.constituents.findOrCreate(tx, agency.id, {
        name: input.name,
        email: input.email,
        phone: input.phone,
        language: input.language,
      });
      const reference = reserved ?? (await this.d.cases.nextReference(tx, agency.id, type.prefix, year));
      const row = await this.d.cases.create(tx, {
        agencyId: agency.id,
        reference,
        title,
        constituentId,
        groupId,
        caseTypeId: type.id,
        priority: route.priority,
        customFields: answers,
      });
      await this.d.cases.addEvent(tx, {
        caseId: row.id,
        kind: 'conversation.started',
        actorKind: 'constituent',
        data: { via: 'portal', service: service.title.en, routing: route.explanation },
      });
      await this.d.caseService.started(tx, row);
      await this.d.audit.record(
        { agencyId: agency.id, actorKind: 'anonymous', actorId: null, action: 'portal.request', objectType: 'case', objectId: row.id, outcome: 'success', sourceIp: ip },
        tx,
      );
      return row;
    });
    this.d.caseService.announceCase(kase);
    // The request reaches staff as the first message of the case's portal conversation, so it is in the inbox
    // like any other contact: what they wrote, else the service they asked for.
    const p: ConstituentPrincipal = {
      kind: 'constituent',
      agencyId: agency.id,
      constituentId: kase.constituentId!,
      widgetSessionId: `portal-request:${kase.id}`,
    };
    const body = input.details || `${(input.language === 'es' && service.title.es) || service.title.en}`;
    await this.reply(p, kase.reference, { clientMessageId: `portal-request:${kase.id}`, body });
    if (this.d.mailer.enabled) {
      const es = input.language === 'es';
      const link = new URL(`/portal/${agency.slug}`, this.d.publicBaseUrl).href;
      await this.d.mailer
        .send({
          to: input.email,
          subject: es ? `Recibimos su solicitud ${kase.reference}` : `We received your request ${kase.reference}`,
          text: es
            ? `Su número de caso es ${kase.reference}. Puede seguirlo en ${link}.\n\n${agency.name}`
            : `Your case reference is ${kase.reference}. You can follow it at ${link}.\n\n${agency.name}`,
        })
        .catch((err) => this.d.logger.warn({ err: (err as Error).message }, 'request confirmation email not sent'));
    }
    return { reference: kase.reference };
  }
}
