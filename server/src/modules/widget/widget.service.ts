import type { WidgetSession } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import type { Limiter } from '../../lib/rate-limit.js';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import type { ConstituentRepository } from '../constituents/constituent.repository.js';
import type { AvailabilityService } from '../availability/availability.service.js';
import type { ConstituentPrincipal } from '../principal.js';
import type { WidgetTokens } from './widget-token.js';

export interface WidgetDeps {
  agencies: AgencyRepository;
  constituents: ConstituentRepository;
  tokens: WidgetTokens;
  widgetSessionsPerIp: Limiter;
  availability: AvailabilityService;
  /** Our own origins: the widget iframe is served from them. */
  ownOrigins: string[];
}

/** Constituent identity for the web channel: anonymous sessions with signed, revocable tokens. */
export class WidgetService {
  constructor(private readonly d: WidgetDeps) {}

  async createSession(agencyKey: string, ip: string): Promise<WidgetSession> {
    await this.d.widgetSessionsPerIp.consume(ip, 'Too many new chats from this network. Please wait a minute and try again.');
    const agency = await this.d.agencies.findByWidgetKey(agencyKey);
    if (!agency) throw new AppError('NOT_FOUND', 'Unknown agency key');
    const session = await this.d.constituents.createWithWidgetSession(agency.id);
    return {
      token: this.d.tokens.issue(session.id),
      constituentId: session.constituentId,
      agency: { id: agency.id, name: agency.name },
      availability: await this.d.availability.forAgency(agency.id),
    };
  }

  /** The constituent behind a token, or undefined for a forged, revoked or unknown token. */
  async authenticate(token: string | undefined): Promise<ConstituentPrincipal | undefined> {
    const id = this.d.tokens.verify(token);
    if (!id) return undefined;
    const session = await this.d.constituents.findWidgetSession(id);
    if (!session || session.revokedAt) return undefined;
    if (session.expiresAt && new Date(session.expiresAt).getTime() <= Date.now()) return undefined;
    return {
      kind: 'constituent',
      agencyId: session.agencyId,
      constituentId: session.constituentId,
      widgetSessionId: session.id,
    };
  }

  /**
   * A token for a constituent who proved who they are another way (a portal one-time code): their own
   * conversations, public messages only, for a few hours.
   */
  async issueFor(agencyId: string, constituentId: string, ttlMs: number): Promise<string> {
    const session = await this.d.constituents.createWidgetSessionFor(agencyId, constituentId, new Date(Date.now() + ttlMs).toISOString());
    return this.d.tokens.issue(session.id);
  }

  availabilityFor(agencyId: string) {
    return this.d.availability.forAgency(agencyId);
  }

  /** Origins whose pages may open a socket for this agency's constituents. */
  async allowedOrigins(agencyId: string): Promise<string[]> {
    const agency = await this.d.agencies.findById(agencyId);
    return [...this.d.ownOrigins, ...(agency?.allowedOrigins ?? [])];
  }
}
