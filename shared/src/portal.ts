import { z } from 'zod';
import { PublicService, Stage } from './case-types.js';
import { CaseStatus, Email, Id, Language, Message, SecureFieldKind, SendMessageBody } from './schemas.js';

// The constituent portal: find a case with its reference and a one-time code, follow it, answer, upload, and
// start a request from the catalog without chat.

const Reference = z.string().trim().toUpperCase().min(1, 'Enter your case reference').max(40);

/** Ask for a one-time code for a case; it goes to the email on the case, never to an address given here. */
export const PortalCodeRequest = z.strictObject({ agency: z.string().min(1).max(60), reference: Reference, language: Language.default('en') });
export type PortalCodeRequest = z.input<typeof PortalCodeRequest>;

export const PortalSignIn = z.strictObject({
  agency: z.string().min(1).max(60),
  reference: Reference,
  code: z.string().trim().regex(/^\d{6}$/, 'The code is 6 digits'),
});
export type PortalSignIn = z.input<typeof PortalSignIn>;

/** A signed-in portal visitor: a constituent token (the same kind the widget holds) and the case they opened. */
export const PortalSession = z.object({ token: z.string(), reference: z.string() });
export type PortalSession = z.infer<typeof PortalSession>;

/** An open secure-field request as the portal lists it: what was asked for, never a value. */
export const PortalSecureRequest = z.object({
  id: Id,
  label: z.string(),
  kind: SecureFieldKind,
  requestedAt: z.iso.datetime({ offset: true }),
});
export type PortalSecureRequest = z.infer<typeof PortalSecureRequest>;

/** What the constituent sees of their case: never internal notes, tasks or staff-only fields. */
export const PortalCase = z.object({
  reference: z.string(),
  title: z.string(),
  status: CaseStatus,
  stage: Stage,
  /** While Awaiting info: what the agency needs from them. */
  awaiting: z.string().nullable(),
  caseType: z.string().nullable(),
  /** Public messages of every conversation on the case, oldest first. */
  messages: z.array(Message),
  /**
   * Values an agent asked for through a secure form (issue #11) that the constituent has not sent yet: the portal
   * shows one form each. Only what was asked for: never a value (values are sealed, and shown to permitted staff only).
   */
  secureRequests: z.array(PortalSecureRequest),
  /** What the agency told them while no conversation was open (also emailed). */
  notices: z.array(z.object({ body: z.string(), createdAt: z.iso.datetime({ offset: true }) })),
  createdAt: z.iso.datetime({ offset: true }),
  updatedAt: z.iso.datetime({ offset: true }),
});
export type PortalCase = z.infer<typeof PortalCase>;

/** A reply (with files uploaded first) from the portal. */
export const PortalReply = SendMessageBody;
export type PortalReply = z.input<typeof PortalReply>;

/** A request started from the catalog in the portal: a case without chat. */
export const PortalRequest = z.strictObject({
  agency: z.string().min(1).max(60),
  serviceId: Id,
  name: z.string().trim().min(1, 'Name is required').max(120),
  email: Email,
  phone: z
    .string()
    .trim()
    .regex(/^\+?[0-9 ()-]{7,20}$/, 'Phone number is not valid')
    .optional(),
  language: Language.default('en'),
  /** Answers to the service's up-front questions, by field key. */
  answers: z.record(z.string(), z.unknown()).default({}),
  details: z.string().trim().max(4000).default(''),
});
export type PortalRequest = z.input<typeof PortalRequest>;

export const PortalRequestResult = z.object({ reference: z.string() });
export type PortalRequestResult = z.infer<typeof PortalRequestResult>;

/** The catalog as the portal shows it: the same as the widget's. */
export const PortalService = PublicService;
export type PortalService = PublicService;

export const PortalAgency = z.object({ slug: z.string(), name: z.string(), services: z.array(PortalService) });
export type PortalAgency = z.infer<typeof PortalAgency>;
