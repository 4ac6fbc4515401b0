import { and, eq, ne, sql } from 'drizzle-orm';
import type { TwilioSettings, TwilioSettingsInput } from '@casebridge/shared';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { agencies } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { SecretBox } from '../../lib/secret-box.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';

/** The agency whose Twilio number a webhook was sent to, with the credentials to check it. */
export interface TwilioAgency {
  agencyId: string;
  accountSid: string;
  authToken: string;
  publicBaseUrl: string;
}

/** Per-agency Twilio settings. The auth token is sealed at rest and never leaves the server. */
export class TwilioSettingsService {
  constructor(private readonly d: { db: Db; box: SecretBox; audit: AuditRepository }) {}

  async get(p: StaffPrincipal): Promise<TwilioSettings> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins see the Twilio settings');
    const [a] = await this.d.db.select().from(agencies).where(eq(agencies.id, p.agencyId));
    const missing = [
      ...(a?.twilioAccountSid ? [] : ['the account SID']),
      ...(a?.twilioAuthTokenSealed ? [] : ['the auth token']),
      ...(a?.twilioPublicBaseUrl ? [] : ['the public URL Twilio calls']),
      ...(a?.twilioNumbers.length ? [] : ['a phone number']),
    ];
    return {
      configured: missing.length === 0,
      accountSid: a?.twilioAccountSid ?? null,
      hasAuthToken: Boolean(a?.twilioAuthTokenSealed),
      publicBaseUrl: a?.twilioPublicBaseUrl ?? null,
      numbers: a?.twilioNumbers ?? [],
      missing,
    };
  }

  async set(p: StaffPrincipal, input: z.output<typeof TwilioSettingsInput>): Promise<TwilioSettings> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change the Twilio settings');
    const numbers = [...new Set(input.numbers)];
    // A number belongs to one agency: otherwise a webhook could not tell whose it is.
    const taken = await this.d.db
      .select({ numbers: agencies.twilioNumbers })
      .from(agencies)
      .where(and(ne(agencies.id, p.agencyId), sql`${agencies.twilioNumbers} && array[${sql.join(numbers.map((n) => sql`${n}`), sql`, `)}]::text[]`));
    const clash = numbers.findIndex((n) => taken.some((t) => t.numbers.includes(n)));
    if (clash >= 0) {
      const message = 'Another agency already uses this number';
      throw new AppError('INVALID_PAYLOAD', message, { issues: [{ path: ['numbers', clash], message }] });
    }
    await this.d.db
      .update(agencies)
      .set({
        twilioAccountSid: input.accountSid,
        twilioPublicBaseUrl: input.publicBaseUrl.replace(/\/+$/, ''),
        twilioNumbers: numbers,
        ...(input.authToken ? { twilioAuthTokenSealed: this.d.box.seal(input.authToken) } : {}),
      })
      .where(eq(agencies.id, p.agencyId));
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      action: 'twilio.settings_update',
      objectType: 'agency',
      objectId: p.agencyId,
      outcome: 'success',
      detail: { numbers: numbers.length, tokenChanged: Boolean(input.authToken) },
    });
    return this.get(p);
  }

  /** The configured agency owning this number, with its token opened; undefined if none is fully set up. */
  async byNumber(number: string): Promise<TwilioAgency | undefined> {
    const [a] = await this.d.db
      .select()
      .from(agencies)
      .where(sql`${number} = any(${agencies.twilioNumbers})`);
    return a ? this.opened(a) : undefined;
  }

  /** The agency's Twilio account for sending, with the number texts go out from; undefined if not set up. */
  async byAgency(agencyId: string): Promise<(TwilioAgency & { fromNumber: string }) | undefined> {
    const [a] = await this.d.db.select().from(agencies).where(eq(agencies.id, agencyId));
    const opened = a ? this.opened(a) : undefined;
    return opened && a!.twilioNumbers[0] ? { ...opened, fromNumber: a!.twilioNumbers[0] } : undefined;
  }

  private opened(a: typeof agencies.$inferSelect): TwilioAgency | undefined {
    const authToken = a.twilioAuthTokenSealed ? this.d.box.open(a.twilioAuthTokenSealed) : undefined;
    if (!a.twilioAccountSid || !a.twilioPublicBaseUrl || !authToken) return undefined;
    return { agencyId: a.id, accountSid: a.twilioAccountSid, authToken, publicBaseUrl: a.twilioPublicBaseUrl };
  }
}
