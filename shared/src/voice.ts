import { z } from 'zod';
import { Id, Language } from './schemas.js';

// ---- voice (Twilio calls) --------------------------------------------------------------------------

const E164 = z.string().trim().regex(/^\+[1-9]\d{6,14}$/, 'Phone numbers are in E.164 form, like +15551234567');

/**
 * What an agency needs beyond its Twilio account for agents to take calls in the browser: an API key (its
 * secret is sealed at rest and never returned) and the TwiML App the browser's outgoing calls use. Leave
 * apiKeySecret out to keep the stored one.
 */
export const VoiceSettingsInput = z.strictObject({
  apiKeySid: z.string().trim().regex(/^SK[0-9a-fA-F]{32}$/, 'An API key SID starts with SK and has 32 hex digits'),
  apiKeySecret: z.string().trim().min(16, 'The API key secret Twilio showed when the key was made').max(128).optional(),
  twimlAppSid: z.string().trim().regex(/^AP[0-9a-fA-F]{32}$/, 'A TwiML App SID starts with AP and has 32 hex digits'),
});
export type VoiceSettingsInput = z.input<typeof VoiceSettingsInput>;

/** The console's view of the voice settings: never the API key secret, only whether one is stored. */
export const VoiceSettings = z.object({
  /** Calls to the agency's numbers reach the IVR (the Twilio account is set up). */
  phoneReady: z.boolean(),
  /** Agents can also answer in the browser (the API key and TwiML App are set too). */
  browserReady: z.boolean(),
  apiKeySid: z.string().nullable(),
  hasApiKeySecret: z.boolean(),
  twimlAppSid: z.string().nullable(),
  /** What is missing for calls in the browser, in words. */
  missing: z.array(z.string()),
});
export type VoiceSettings = z.infer<typeof VoiceSettings>;

/** Where an agent takes calls: in the browser (null) or on this phone number. */
export const VoicePreferenceInput = z.strictObject({ phoneNumber: E164.nullable() });
export type VoicePreferenceInput = z.input<typeof VoicePreferenceInput>;
export const VoicePreference = z.object({
  phoneNumber: z.string().nullable(),
  /** The agency takes calls (its Twilio account is set up): the console offers the browser phone. */
  phoneReady: z.boolean(),
});
export type VoicePreference = z.infer<typeof VoicePreference>;

/** A short-lived Twilio access token for the Voice JS SDK, scoped to the signed-in agent. */
export const VoiceToken = z.object({
  token: z.string(),
  identity: z.string(),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type VoiceToken = z.infer<typeof VoiceToken>;

/**
 * Where a call is: in the phone menu, waiting in a group's queue, ringing an agent, talking, or over (completed,
 * abandoned while waiting, left a voicemail, asked to be called back).
 */
export const CallState = z.enum(['ivr', 'queued', 'connecting', 'in_progress', 'completed', 'abandoned', 'voicemail', 'callback']);
export type CallState = z.infer<typeof CallState>;

/** One call as the console shows it on a case. */
export const CallSummary = z.object({
  id: Id,
  conversationId: Id.nullable(),
  caseId: Id.nullable(),
  from: z.string(),
  state: CallState,
  language: Language,
  service: z.string().nullable(),
  agentName: z.string().nullable(),
  queuedAt: z.string().nullable(),
  answeredAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  durationSeconds: z.number().int().nullable(),
  /** Same-origin link that streams the recording to staff who may see the call; null without one. */
  recordingUrl: z.string().nullable(),
  recordingKind: z.enum(['voicemail', 'call']).nullable(),
  recordingDurationSeconds: z.number().int().nullable(),
  transcriptionStatus: z.string().nullable(),
  transcription: z.string().nullable(),
  createdAt: z.string(),
});
export type CallSummary = z.infer<typeof CallSummary>;
