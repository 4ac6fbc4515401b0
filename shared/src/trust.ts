import { z } from 'zod';
import { Id, SecureFieldKind } from './schemas.js';

// Issue #11, "Trust for public agencies": the audit trail and sensitive data.

export const AuditOutcome = z.enum(['success', 'denied', 'failure']);
export type AuditOutcome = z.infer<typeof AuditOutcome>;

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD');

/** GET /api/admin/audit: every filter optional; `format=csv` exports everything that matches (up to a cap). */
export const AuditQuery = z.object({
  /** Matches the actor's id exactly, or their email or display name (part of it). */
  actor: z.string().trim().max(200).optional(),
  /** An action (`case.read`) or a prefix ending in a dot (`case.`). */
  action: z.string().trim().max(100).optional(),
  objectType: z.string().trim().max(50).optional(),
  objectId: z.string().trim().max(200).optional(),
  outcome: AuditOutcome.optional(),
  /** Inclusive local days (UTC). */
  from: day.optional(),
  to: day.optional(),
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  pageSize: z.coerce.number().int().min(1).max(200).default(50),
  format: z.enum(['json', 'csv']).default('json'),
});
export type AuditQuery = z.input<typeof AuditQuery>;

export const AuditEntry = z.object({
  id: Id,
  seq: z.number().int().nullable(),
  createdAt: z.string(),
  actorKind: z.enum(['staff', 'constituent', 'system', 'anonymous']),
  actorId: z.string().nullable(),
  actorName: z.string().nullable(),
  actorRole: z.string().nullable(),
  action: z.string(),
  objectType: z.string().nullable(),
  objectId: z.string().nullable(),
  outcome: AuditOutcome,
  sourceIp: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export const AuditPage = z.object({
  entries: z.array(AuditEntry),
  total: z.number().int().nonnegative(),
  page: z.number().int().positive(),
  pageSize: z.number().int().positive(),
});
export type AuditPage = z.infer<typeof AuditPage>;

/** An agency's own masking pattern (besides SSNs and cards): a label and a JavaScript regular expression. */
export const SensitivePattern = z.object({
  label: z.string().trim().min(1).max(60),
  pattern: z.string().min(1).max(200),
});
export type SensitivePattern = z.infer<typeof SensitivePattern>;
export const SensitivePatternsInput = z.object({ patterns: z.array(SensitivePattern).max(20) });

/** An agent asks the constituent for a value through a separate form. */
export const SecureFieldRequestInput = z.object({
  label: z.string().trim().min(1, 'Say what you are asking for').max(80),
  kind: SecureFieldKind.default('other'),
});
/** The constituent's answer: never stored as a message, sealed at rest. */
export const SecureFieldValueInput = z.object({
  value: z
    .string()
    .trim()
    .min(1, 'Enter the value')
    .max(200, 'The value can be at most 200 characters')
    .refine((s) => !s.includes('\u0000'), 'The value contains a NUL character'),
});
export const SecureFieldValue = z.object({ id: Id, label: z.string(), value: z.string() });
export type SecureFieldValue = z.infer<typeof SecureFieldValue>;

// ---- Single sign-on (OpenID Connect), issue #11 ----

/** A role an identity-provider claim value grants. */
const StaffRoleName = z.enum(['admin', 'supervisor', 'agent', 'auditor']);
const ClaimName = z
  .string()
  .trim()
  .min(1, 'Name the claim')
  .max(100)
  .regex(/^[\w.:/-]+$/, 'A claim name has letters, digits and . _ : / - only');
const Domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{3,253}$)([a-z0-9-]+\.)+[a-z]{2,63}$/, 'A domain like springfield.gov');

/** What an admin saves on the Sign-in page. The client secret is write-only: leave it out to keep the stored one. */
export const SsoSettingsInput = z.strictObject({
  enabled: z.boolean(),
  displayName: z.string().trim().min(1, 'Name the provider, as staff know it (e.g. "Springfield ID")').max(60),
  issuer: z.url({ protocol: /^https?$/, message: 'The issuer URL, like https://login.springfield.gov' }).max(300),
  clientId: z.string().trim().min(1, 'Enter the client id the provider gave CaseBridge').max(200),
  clientSecret: z.string().min(1).max(500).optional(),
  /** Forget the stored secret (a public client that relies on PKCE alone). */
  clearClientSecret: z.boolean().optional(),
  emailDomains: z.array(Domain).max(20),
  roleClaim: ClaimName.default('roles'),
  roleMap: z.array(z.strictObject({ value: z.string().trim().min(1, 'Enter the claim value').max(200), role: StaffRoleName })).max(50),
  groupClaim: ClaimName.default('groups'),
  groupMap: z.array(z.strictObject({ value: z.string().trim().min(1, 'Enter the claim value').max(200), groupId: Id })).max(100),
  provisionUsers: z.boolean(),
  passwordsOff: z.boolean(),
});
export type SsoSettingsInput = z.input<typeof SsoSettingsInput>;

/** What the admin page shows: never the secret, only whether one is stored. */
export const SsoSettings = z.object({
  configured: z.boolean(),
  enabled: z.boolean(),
  displayName: z.string(),
  issuer: z.string(),
  clientId: z.string(),
  hasClientSecret: z.boolean(),
  emailDomains: z.array(z.string()),
  roleClaim: z.string(),
  roleMap: z.array(z.object({ value: z.string(), role: StaffRoleName })),
  groupClaim: z.string(),
  groupMap: z.array(z.object({ value: z.string(), groupId: Id })),
  provisionUsers: z.boolean(),
  passwordsOff: z.boolean(),
  /** The redirect URI to register at the provider. */
  redirectUri: z.string(),
  agencySlug: z.string(),
});
export type SsoSettings = z.infer<typeof SsoSettings>;

/** What the sign-in page learns from an email address or an agency slug: whose provider, and where to start. */
export const SsoDiscovery = z.object({
  sso: z
    .object({ agencyName: z.string(), displayName: z.string(), startUrl: z.string(), passwordsOff: z.boolean() })
    .nullable(),
});
export type SsoDiscovery = z.infer<typeof SsoDiscovery>;
export const SsoDiscoverInput = z.strictObject({ email: z.email('Enter a valid email address, like name@agency.gov').max(254) });
