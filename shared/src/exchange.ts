import { z } from 'zod';
import { Stage } from './case-types.js';
import { CaseStatus, Id, Priority } from './schemas.js';

// Issue #10, the Service Exchange: two CaseBridge instances hand cases and live conversations to each other.

/** Constituent details a manifest may let cross. */
export const ManifestConstituentField = z.enum(['name', 'email', 'phone', 'language']);
export type ManifestConstituentField = z.infer<typeof ManifestConstituentField>;

/** Timeline entries a manifest may let cross. `public_messages` is what a live handoff needs. */
export const ManifestTimelineEntry = z.enum(['public_messages', 'internal_notes', 'case_events']);
export type ManifestTimelineEntry = z.infer<typeof ManifestTimelineEntry>;

const fieldKey = z.string().trim().min(1).max(64).regex(/^[a-zA-Z0-9_]+$/, 'letters, digits and _ only');

/**
 * What may leave for one partner. Anything not listed never leaves: the reference, status and stage of the case
 * (needed to link and mirror) always do; `title`, `priority` and custom fields only when named in `caseFields`.
 */
export const DataManifest = z.object({
  /** `title`, `priority`, or the key of a custom field. */
  caseFields: z.array(fieldKey).max(100).default([]),
  constituent: z.array(ManifestConstituentField).max(4).default([]),
  timeline: z.array(ManifestTimelineEntry).max(3).default([]),
});
export type DataManifest = z.infer<typeof DataManifest>;

/** A service definition the partner accepts (its id on the partner's side, and a label for our agents). */
export const PartnerService = z.object({
  id: Id,
  title: z.string().trim().min(1).max(120),
});
export type PartnerService = z.infer<typeof PartnerService>;

// shared/ compiles without DOM or Node types; URL exists in every runtime that loads it (Node, browsers).
interface ParsedUrl {
  protocol: string;
  hostname: string;
  username: string;
  password: string;
  search: string;
  hash: string;
  pathname: string;
  origin: string;
}
const parseUrl = (v: string): ParsedUrl => new (globalThis as unknown as { URL: new (v: string) => ParsedUrl }).URL(v);

/**
 * The partner's base URL: https, or http on a loopback address (two instances on one machine, tests).
 * No path, query, fragment or credentials: we only ever append our own fixed paths to it.
 */
export const PartnerBaseUrl = z
  .string()
  .trim()
  .max(300)
  .refine((v) => {
    try {
      const u = parseUrl(v);
      const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
      return (
        (u.protocol === 'https:' || (u.protocol === 'http:' && loopback)) &&
        !u.username &&
        !u.password &&
        !u.search &&
        !u.hash &&
        (u.pathname === '/' || u.pathname === '')
      );
    } catch {
      return false;
    }
  }, 'an https:// origin (http:// only for 127.0.0.1 or localhost), with no path')
  .transform((v) => parseUrl(v).origin);

const partnerFields = {
  name: z.string().trim().min(1).max(120),
  baseUrl: PartnerBaseUrl,
  services: z.array(PartnerService).max(100),
  manifest: DataManifest,
  /** An offer nobody answers in this long returns to our queue. */
  offerTimeoutSeconds: z.number().int().min(5).max(7 * 24 * 3600),
};

export const PartnerInput = z.object({
  ...partnerFields,
  services: partnerFields.services.default([]),
  manifest: partnerFields.manifest.default({ caseFields: [], constituent: [], timeline: [] }),
  offerTimeoutSeconds: partnerFields.offerTimeoutSeconds.default(600),
});
export type PartnerInput = z.input<typeof PartnerInput>;

/** Only the fields sent change (no defaults here: a status change must not reset the manifest). */
export const PartnerPatch = z.object(partnerFields).partial().extend({
  /** Revoked: nothing is sent to it and nothing from it is accepted. */
  status: z.enum(['active', 'revoked']).optional(),
});
export type PartnerPatch = z.input<typeof PartnerPatch>;

/** An Ed25519 public key in PEM (SPKI), with the id the other side signs under. */
export const PartnerKeyInput = z.object({
  keyId: z.string().trim().min(8).max(80).regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only'),
  publicKey: z.string().trim().min(40).max(2000).startsWith('-----BEGIN PUBLIC KEY-----', 'a PEM public key'),
});
export type PartnerKeyInput = z.infer<typeof PartnerKeyInput>;

export const ExchangeKey = z.object({
  keyId: z.string(),
  publicKey: z.string(),
  /** Ours: `next` is published but not yet used to sign; `active` signs; `retired` no longer signs. Theirs: active or revoked. */
  status: z.enum(['next', 'active', 'retired', 'revoked']),
  createdAt: z.string(),
});
export type ExchangeKey = z.infer<typeof ExchangeKey>;

export const Partner = z.object({
  id: Id,
  name: z.string(),
  baseUrl: z.string(),
  status: z.enum(['active', 'revoked']),
  services: z.array(PartnerService),
  manifest: DataManifest,
  offerTimeoutSeconds: z.number().int(),
  /** Keys we sign with for this partner (they register the public halves). */
  ourKeys: z.array(ExchangeKey),
  /** The partner's public keys we verify with. */
  theirKeys: z.array(ExchangeKey),
  /** Calls waiting in the outbox for this partner, and the last error seen sending to it. */
  pending: z.number().int(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
});
export type Partner = z.infer<typeof Partner>;

/** What agents see of a partner when offering work. */
export const PartnerOption = z.object({ id: Id, name: z.string(), services: z.array(PartnerService) });
export type PartnerOption = z.infer<typeof PartnerOption>;

export const HandoffState = z.enum(['sending', 'offered', 'accepted', 'declined', 'expired']);
export type HandoffState = z.infer<typeof HandoffState>;

/** An agent offers a live conversation, or a case, to a partner agency. */
export const OfferInput = z
  .object({
    partnerId: Id,
    conversationId: Id.optional(),
    caseId: Id.optional(),
    /** One of the partner's accepted services: its routing rules pick the queue from it. */
    serviceId: Id.optional(),
    note: z.string().trim().min(1, 'Say why you are handing this over').max(2000),
  })
  .refine((v) => Boolean(v.conversationId) !== Boolean(v.caseId), {
    message: 'Offer a conversation or a case',
    path: ['conversationId'],
  });
export type OfferInput = z.input<typeof OfferInput>;

export const DeclineInput = z.object({ reason: z.string().trim().min(1, 'Say why you decline').max(1000) });
export type DeclineInput = z.infer<typeof DeclineInput>;

/** What crossed over with an offer, exactly as received (only what the sender's manifest allowed). */
export const SharedCase = z.object({
  reference: z.string(),
  status: CaseStatus,
  stage: Stage,
  title: z.string().optional(),
  priority: Priority.optional(),
  customFields: z.record(z.string(), z.unknown()).optional(),
  constituent: z
    .object({
      name: z.string().nullable().optional(),
      email: z.string().nullable().optional(),
      phone: z.string().nullable().optional(),
      language: z.string().optional(),
    })
    .optional(),
  /** Earlier public messages (and notes, when allowed), oldest first. */
  transcript: z
    .array(z.object({ from: z.enum(['constituent', 'agency', 'note']), name: z.string().nullable(), body: z.string(), at: z.string() }))
    .optional(),
  events: z.array(z.object({ kind: z.string(), at: z.string() })).optional(),
});
export type SharedCase = z.infer<typeof SharedCase>;

export const Handoff = z.object({
  /** The same id on both instances: both timelines and audit logs carry it. */
  id: Id,
  direction: z.enum(['outbound', 'inbound']),
  kind: z.enum(['conversation', 'case']),
  state: HandoffState,
  partnerId: Id,
  partnerName: z.string(),
  caseId: Id.nullable(),
  caseReference: z.string().nullable(),
  conversationId: Id.nullable(),
  /** The linked case's reference on the other side, once known. */
  remoteReference: z.string().nullable(),
  groupId: Id.nullable(),
  groupName: z.string().nullable(),
  note: z.string(),
  reason: z.string().nullable(),
  acceptedBy: z.string().nullable(),
  shared: SharedCase.nullable(),
  expiresAt: z.string().nullable(),
  createdAt: z.string(),
  decidedAt: z.string().nullable(),
});
export type Handoff = z.infer<typeof Handoff>;

export const HandoffQuery = z.object({
  direction: z.enum(['outbound', 'inbound']).optional(),
  state: HandoffState.optional(),
  conversationId: Id.optional(),
  caseId: Id.optional(),
});
export type HandoffQuery = z.input<typeof HandoffQuery>;

// ---- the wire between instances (POST {partner}/exchange/v1/events, signed) ---------------------------------

/** One event between instances. `(handoffId, seq)` is its idempotency key: a retry is answered, not re-applied. */
export const ExchangeEvent = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('offer'),
    handoffId: Id,
    seq: z.number().int().nonnegative(),
    data: z.object({
      handoffKind: z.enum(['conversation', 'case']),
      serviceId: Id.nullable(),
      note: z.string().max(2000),
      expiresAt: z.string(),
      shared: SharedCase,
    }),
  }),
  z.object({ kind: z.literal('accept'), handoffId: Id, seq: z.number().int().nonnegative(), data: z.object({ reference: z.string(), agentName: z.string() }) }),
  z.object({ kind: z.literal('decline'), handoffId: Id, seq: z.number().int().nonnegative(), data: z.object({ reason: z.string().max(1000) }) }),
  z.object({ kind: z.literal('withdraw'), handoffId: Id, seq: z.number().int().nonnegative(), data: z.object({ reason: z.string().max(1000) }) }),
  z.object({
    kind: z.literal('message'),
    handoffId: Id,
    seq: z.number().int().nonnegative(),
    data: z.object({
      from: z.enum(['constituent', 'agency']),
      name: z.string().nullable(),
      body: z.string().max(8000),
      at: z.string(),
      /** The message's id on the sending side: it is queued once, whichever path saw it first. */
      messageId: Id.optional(),
    }),
  }),
  z.object({ kind: z.literal('status'), handoffId: Id, seq: z.number().int().nonnegative(), data: z.object({ status: CaseStatus, stage: Stage }) }),
  z.object({ kind: z.literal('ended'), handoffId: Id, seq: z.number().int().nonnegative(), data: z.object({}) }),
]);
export type ExchangeEvent = z.infer<typeof ExchangeEvent>;
