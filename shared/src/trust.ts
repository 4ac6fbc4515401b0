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
    .max(200)
    .refine((s) => !s.includes('\u0000'), 'The value contains a NUL character'),
});
export const SecureFieldValue = z.object({ id: Id, label: z.string(), value: z.string() });
export type SecureFieldValue = z.infer<typeof SecureFieldValue>;
