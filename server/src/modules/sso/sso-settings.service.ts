import { and, eq, inArray, ne, sql } from 'drizzle-orm';
import type { SsoSettings, SsoSettingsInput } from '@casebridge/shared';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { agencies, agencySignIn, groups } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { SecretBox } from '../../lib/secret-box.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';

export type SignInRow = typeof agencySignIn.$inferSelect;

/** An agency's provider as the sign-in flow needs it: the secret opened. */
export interface AgencyProvider {
  agencyId: string;
  agencyName: string;
  agencySlug: string;
  settings: SignInRow;
  clientSecret: string | undefined;
}

const invalid = (path: (string | number)[], message: string) => new AppError('INVALID_PAYLOAD', message, { issues: [{ path, message }] });

/**
 * Per-agency OpenID Connect settings (issue #11). The client secret is sealed at rest (AES-256-GCM under the
 * server secret, like the Twilio token) and never returned. Admins only.
 */
export class SsoSettingsService {
  constructor(private readonly d: { db: Db; box: SecretBox; audit: AuditRepository; redirectUri: string }) {}

  async get(p: StaffPrincipal): Promise<SsoSettings> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins see the sign-in settings');
    const [agency] = await this.d.db.select({ slug: agencies.slug }).from(agencies).where(eq(agencies.id, p.agencyId));
    const [s] = await this.d.db.select().from(agencySignIn).where(eq(agencySignIn.agencyId, p.agencyId));
    return {
      configured: Boolean(s),
      enabled: s?.enabled ?? false,
      displayName: s?.displayName ?? '',
      issuer: s?.issuer ?? '',
      clientId: s?.clientId ?? '',
      hasClientSecret: Boolean(s?.clientSecretSealed),
      emailDomains: s?.emailDomains ?? [],
      roleClaim: s?.roleClaim ?? 'roles',
      roleMap: s?.roleMap ?? [],
      groupClaim: s?.groupClaim ?? 'groups',
      groupMap: s?.groupMap ?? [],
      provisionUsers: s?.provisionUsers ?? false,
      passwordsOff: s?.passwordsOff ?? false,
      redirectUri: this.d.redirectUri,
      agencySlug: agency?.slug ?? '',
    };
  }

  async set(p: StaffPrincipal, input: z.output<typeof SsoSettingsInput>): Promise<SsoSettings> {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change the sign-in settings');
    const issuer = input.issuer.replace(/\/+$/, '');
    const url = new URL(issuer);
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !loopback) throw invalid(['issuer'], 'The issuer must use https');
    const domains = [...new Set(input.emailDomains)];
    if (domains.length) {
      // An email domain leads to one agency's provider: otherwise the sign-in page could not tell whose it is.
      const taken = await this.d.db
        .select({ domains: agencySignIn.emailDomains })
        .from(agencySignIn)
        .where(and(ne(agencySignIn.agencyId, p.agencyId), sql`${agencySignIn.emailDomains} && array[${sql.join(domains.map((d) => sql`${d}`), sql`, `)}]::text[]`));
      const clash = domains.findIndex((d) => taken.some((t) => t.domains.includes(d)));
      if (clash >= 0) throw invalid(['emailDomains', clash], 'Another agency already signs in with this domain');
    }
    const groupIds = [...new Set(input.groupMap.map((g) => g.groupId))];
    if (groupIds.length) {
      const mine = await this.d.db.select({ id: groups.id }).from(groups).where(and(eq(groups.agencyId, p.agencyId), inArray(groups.id, groupIds)));
      const bad = input.groupMap.findIndex((g) => !mine.some((m) => m.id === g.groupId));
      if (bad >= 0) throw invalid(['groupMap', bad, 'groupId'], 'No such group in your agency');
    }
    if (input.passwordsOff && !input.enabled) throw invalid(['passwordsOff'], 'Turn single sign-on on before turning passwords off');
    if (input.provisionUsers && input.roleMap.length === 0) {
      throw invalid(['roleMap'], 'New accounts need a role: map at least one claim value to a role');
    }
    const [before] = await this.d.db.select().from(agencySignIn).where(eq(agencySignIn.agencyId, p.agencyId));
    const secret = input.clientSecret
      ? this.d.box.seal(input.clientSecret)
      : input.clearClientSecret
        ? null
        : (before?.clientSecretSealed ?? null);
    const row = {
      enabled: input.enabled,
      displayName: input.displayName,
      issuer,
      clientId: input.clientId,
      clientSecretSealed: secret,
      emailDomains: domains,
      roleClaim: input.roleClaim,
      roleMap: input.roleMap,
      groupClaim: input.groupClaim,
      groupMap: input.groupMap,
      provisionUsers: input.provisionUsers,
      passwordsOff: input.passwordsOff,
      updatedAt: sql`now()` as unknown as string,
    };
    await this.d.db
      .insert(agencySignIn)
      .values({ agencyId: p.agencyId, ...row })
      .onConflictDoUpdate({ target: agencySignIn.agencyId, set: row });
    await this.d.audit.record({
      agencyId: p.agencyId,
      actorKind: 'staff',
      actorId: p.userId,
      actorRole: p.role,
      action: 'sso.settings_update',
      objectType: 'agency',
      objectId: p.agencyId,
      outcome: 'success',
      detail: {
        enabled: input.enabled,
        issuer,
        clientId: input.clientId,
        secretChanged: Boolean(input.clientSecret) || Boolean(input.clearClientSecret && before?.clientSecretSealed),
        passwordsOff: input.passwordsOff,
        provisionUsers: input.provisionUsers,
        roleMap: input.roleMap.length,
        groupMap: input.groupMap.length,
      },
    });
    return this.get(p);
  }

  /** The enabled provider of an agency, by its slug. */
  async bySlug(slug: string): Promise<AgencyProvider | undefined> {
    const [row] = await this.d.db
      .select({ s: agencySignIn, name: agencies.name, slug: agencies.slug })
      .from(agencySignIn)
      .innerJoin(agencies, eq(agencies.id, agencySignIn.agencyId))
      .where(and(eq(agencies.slug, slug), eq(agencySignIn.enabled, true)));
    return row && this.provider(row);
  }

  async byAgency(agencyId: string): Promise<AgencyProvider | undefined> {
    const [row] = await this.d.db
      .select({ s: agencySignIn, name: agencies.name, slug: agencies.slug })
      .from(agencySignIn)
      .innerJoin(agencies, eq(agencies.id, agencySignIn.agencyId))
      .where(and(eq(agencySignIn.agencyId, agencyId), eq(agencySignIn.enabled, true)));
    return row && this.provider(row);
  }

  /** The enabled provider whose email domains include this address's domain. */
  async byEmail(email: string): Promise<AgencyProvider | undefined> {
    const domain = email.split('@').pop()?.toLowerCase() ?? '';
    const [row] = await this.d.db
      .select({ s: agencySignIn, name: agencies.name, slug: agencies.slug })
      .from(agencySignIn)
      .innerJoin(agencies, eq(agencies.id, agencySignIn.agencyId))
      .where(and(eq(agencySignIn.enabled, true), sql`${domain} = any(${agencySignIn.emailDomains})`));
    return row && this.provider(row);
  }

  /** False when the agency has turned local passwords off (its staff sign in through the provider only). */
  async passwordsAllowed(agencyId: string): Promise<boolean> {
    const [row] = await this.d.db
      .select({ off: agencySignIn.passwordsOff, enabled: agencySignIn.enabled })
      .from(agencySignIn)
      .where(eq(agencySignIn.agencyId, agencyId));
    return !(row?.enabled && row.off);
  }

  private provider(row: { s: SignInRow; name: string; slug: string }): AgencyProvider {
    return {
      agencyId: row.s.agencyId,
      agencyName: row.name,
      agencySlug: row.slug,
      settings: row.s,
      clientSecret: row.s.clientSecretSealed ? this.d.box.open(row.s.clientSecretSealed) : undefined,
    };
  }
}
