import type { Availability } from '@casebridge/shared';
import type { AgencyRepository } from '../agencies/agency.repository.js';
import { isBusinessTime } from '../../lib/business-time.js';

export interface AvailabilityDeps {
  agencies: AgencyRepository;
  /** Staff who can take chats and are connected now, in a group (across every node). */
  onlineAgents(groupId: string): Promise<number>;
  /** Can transcripts be emailed (outgoing mail is set up)? */
  emailEnabled: boolean;
  now?: () => Date;
}

/** Is live chat staffed right now? If not, the widget offers to leave a message that becomes a case. */
export class AvailabilityService {
  constructor(private readonly d: AvailabilityDeps) {}

  async forAgency(agencyId: string): Promise<Availability> {
    const agency = await this.d.agencies.findById(agencyId);
    const emailTranscript = this.d.emailEnabled;
    const textMe = Boolean(agency?.twilioAccountSid && agency.twilioAuthTokenSealed && agency.twilioPublicBaseUrl && agency.twilioNumbers.length);
    const now = this.d.now?.() ?? new Date();
    if (!agency || !isBusinessTime(now, { hours: agency.businessHours ?? null, holidays: agency.holidays })) {
      return { open: false, reason: 'closed', emailTranscript, textMe };
    }
    const groupId = await this.d.agencies.defaultGroupId(agencyId);
    if (!groupId || (await this.d.onlineAgents(groupId)) === 0) return { open: false, reason: 'no_agents', emailTranscript, textMe };
    return { open: true, reason: null, emailTranscript, textMe };
  }
}
