import { eq } from 'drizzle-orm';
import type { VoicePreference, VoiceSettings, VoiceSettingsInput } from '@casebridge/shared';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { agencies, users } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { SecretBox } from '../../lib/secret-box.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';

/** What a browser access token is signed with. */
export interface BrowserVoiceCredentials {
  accountSid: string;
  apiKeySid: string;
  apiKeySecret: string;
  twimlAppSid: string;
}

/**
 * The voice half of an agency's Twilio settings: the API key (secret sealed at rest, never returned) and the
 * TwiML App that browser calling needs, and where each agent takes calls. The account itself (SID, auth token,
 * numbers, public URL) is the Twilio settings service's.
 */
export class VoiceSettingsService {
  constructor(private readonly d: { db: Db; box: SecretBox; audit: AuditRepository }) {}

  async get(p: StaffPrincipal): Promise<VoiceSettings> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins see the voice settings');
    const [a] = await this.d.db.select().from(agencies).where(eq(agencies.id, p.agencyId));
    const phoneReady = Boolean(a?.twilioAccountSid && a.twilioAuthTokenSealed && a.twilioPublicBaseUrl && a.twilioNumbers.length);
    const missing = [
      ...(phoneReady ? [] : ['the Twilio account (on this page, above)']),
      ...(a?.twilioApiKeySid ? [] : ['the API key SID']),
      ...(a?.twilioApiKeySecretSealed ? [] : ['the API key secret']),
      ...(a?.twilioTwimlAppSid ? [] : ['the TwiML App SID']),
    ];
    return {
      phoneReady,
      browserReady: missing.length === 0,
      apiKeySid: a?.twilioApiKeySid ?? null,
      hasApiKeySecret: Boolean(a?.twilioApiKeySecretSealed),
      twimlAppSid: a?.twilioTwimlAppSid ?? null,
      missing,
    };
  }

  async set(p: StaffPrincipal, input: z.output<typeof VoiceSettingsInput>): Promise<VoiceSettings> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change the voice settings');
    await this.d.db
      .update(agencies)
      .set({
        twilioApiKeySid: input.apiKeySid,
        twilioTwimlAppSid: input.twimlAppSid,
        ...(input.apiKeySecret ? { twilioApiKeySecretSealed: this.d.box.seal(input.apiKeySecret) } : {}),
      })
      .where(eq(agencies.id, p.agencyId));
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'twilio.voice_settings_update',
      objectType: 'agency',
      objectId: p.agencyId,
      outcome: 'success',
      detail: { secretChanged: Boolean(input.apiKeySecret) },
    });
    return this.get(p);
  }

  /** Everything a browser access token needs, or the list of what is missing (in words). */
  async browserCredentials(agencyId: string): Promise<{ ok: true; creds: BrowserVoiceCredentials } | { ok: false; missing: string[] }> {
    const [a] = await this.d.db.select().from(agencies).where(eq(agencies.id, agencyId));
    const apiKeySecret = a?.twilioApiKeySecretSealed ? this.d.box.open(a.twilioApiKeySecretSealed) : undefined;
    const missing = [
      ...(a?.twilioAccountSid ? [] : ['the Twilio account SID']),
      ...(a?.twilioApiKeySid ? [] : ['the API key SID']),
      ...(apiKeySecret ? [] : ['the API key secret']),
      ...(a?.twilioTwimlAppSid ? [] : ['the TwiML App SID']),
    ];
    if (missing.length || !a) return { ok: false, missing };
    return {
      ok: true,
      creds: { accountSid: a.twilioAccountSid!, apiKeySid: a.twilioApiKeySid!, apiKeySecret: apiKeySecret!, twimlAppSid: a.twilioTwimlAppSid! },
    };
  }

  async preference(p: StaffPrincipal): Promise<VoicePreference> {
    const [u] = await this.d.db.select({ phone: users.voicePhone }).from(users).where(eq(users.id, p.userId));
    const [a] = await this.d.db.select().from(agencies).where(eq(agencies.id, p.agencyId));
    const phoneReady = Boolean(a?.twilioAccountSid && a.twilioAuthTokenSealed && a.twilioPublicBaseUrl && a.twilioNumbers.length);
    return { phoneNumber: u?.phone ?? null, phoneReady };
  }

  async setPreference(p: StaffPrincipal, phoneNumber: string | null): Promise<VoicePreference> {
    if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins do not take calls');
    await this.d.db.update(users).set({ voicePhone: phoneNumber }).where(eq(users.id, p.userId));
    return this.preference(p);
  }

  /** Where to put a call through to this agent: their phone number, else the browser. */
  async agentPhone(userId: string): Promise<string | null> {
    const [u] = await this.d.db.select({ phone: users.voicePhone }).from(users).where(eq(users.id, userId));
    return u?.phone ?? null;
  }

  /** The agency's name (the greeting says it). */
  async agencyName(agencyId: string): Promise<string> {
    const [a] = await this.d.db.select({ name: agencies.name }).from(agencies).where(eq(agencies.id, agencyId));
    return a?.name ?? '';
  }
}

/** The Voice SDK identity of an agent: stable, only letters, digits and underscores. */
export function agentIdentity(userId: string): string {
  return `agent_${userId.replace(/-/g, '')}`;
}
