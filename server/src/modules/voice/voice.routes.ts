import { Readable } from 'node:stream';
import express, { Router, type Request, type Response } from 'express';
import twilio from 'twilio';
import { Id, VoicePreferenceInput, VoiceSettingsInput, type VoiceToken } from '@casebridge/shared';
import { AppError } from '../../errors.js';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { TwilioAgency, TwilioSettingsService } from '../twilio/twilio-settings.service.js';
import { refuseWebhook, signedBy, verifyTwilioSignature } from '../twilio/webhook-signature.js';
import type { CallRow } from './call.repository.js';
import { queueName, type CallService } from './call.service.js';
import { Ivr, languageFrom, PROMPTS, serviceFrom, VOICE_PATH, waitChoiceFrom, type Lang } from './ivr.js';
import type { OutgoingCalls } from './outgoing.js';
import { agentIdentity, type VoiceSettingsService } from './voice-settings.service.js';

const CALL_SID = /^CA[0-9a-fA-F]{32}$/;
const RECORDING_SID = /^RE[0-9a-fA-F]{32}$/;
const TOKEN_TTL_SECONDS = 3600;

type Params = Record<string, string>;
type Signed = { agency: TwilioAgency; params: Params; ivr: Ivr };

const langOf = (req: Request, fallback: Lang = 'en'): Lang => (req.query.lang === 'es' ? 'es' : req.query.lang === 'en' ? 'en' : fallback);
const attemptOf = (req: Request) => Math.min(5, Math.max(0, Number(req.query.attempt) || 0));
const intOf = (v: string | undefined) => (v !== undefined && /^\d{1,7}$/.test(v) ? Number(v) : undefined);

/** Staff endpoints: voice settings (admins), where an agent takes calls, browser tokens, calls on a case, recordings. */
export function voiceApiRoutes(deps: { settings: VoiceSettingsService; calls: CallService }): Router {
  const router = Router();
  router.get('/admin/twilio/voice', async (_req, res) => {
    res.json(await deps.settings.get(requireStaff(res)));
  });
  router.put('/admin/twilio/voice', async (req, res) => {
    res.json(await deps.settings.set(requireStaff(res), parse(VoiceSettingsInput, req.body)));
  });
  router.get('/voice/preference', async (_req, res) => {
    res.json(await deps.settings.preference(requireStaff(res)));
  });
  router.put('/voice/preference', async (req, res) => {
    const p = requireStaff(res);
    res.json(await deps.settings.setPreference(p, parse(VoicePreferenceInput, req.body).phoneNumber));
  });

  /** A Voice SDK access token for the signed-in agent: they can receive calls as themselves, and nobody else. */
  router.get('/voice/token', async (_req, res) => {
    const p = requireStaff(res);
    if (p.role === 'admin') throw new AppError('FORBIDDEN', 'Admins do not take calls');
    const found = await deps.settings.browserCredentials(p.agencyId);
    if (!found.ok) {
      throw new AppError('UNAVAILABLE', `Calls in the browser are not set up: missing ${found.missing.join(', ')}`, { retryable: false });
    }
    const { creds } = found;
    const identity = agentIdentity(p.userId);
    const token = new twilio.jwt.AccessToken(creds.accountSid, creds.apiKeySid, creds.apiKeySecret, { identity, ttl: TOKEN_TTL_SECONDS });
    token.addGrant(new twilio.jwt.AccessToken.VoiceGrant({ incomingAllow: true, outgoingApplicationSid: creds.twimlAppSid }));
    const body: VoiceToken = { token: token.toJwt(), identity, expiresAt: new Date(Date.now() + TOKEN_TTL_SECONDS * 1000).toISOString() };
    res.json(body);
  });

  router.get('/cases/:caseId/calls', async (req, res) => {
    const p = requireStaff(res);
    res.json({ calls: await deps.calls.listForCase(p, parse(Id, req.params.caseId)) });
  });

  /** Streams a recording to staff who may see its call; never cached, never framed elsewhere. */
  router.get('/calls/:callId/recording', async (req, res) => {
    const p = requireStaff(res);
    const upstream = await deps.calls.recording(p, parse(Id, req.params.callId), req.ip);
    res.status(200);
    res.setHeader('Content-Type', upstream.headers.get('content-type') ?? 'audio/mpeg');
    const length = upstream.headers.get('content-length');
    if (length) res.setHeader('Content-Length', length);
    res.setHeader('Cache-Control', 'private, no-store');
    res.setHeader('Content-Disposition', 'inline');
    res.setHeader('Content-Security-Policy', "default-src 'none'; media-src 'self'; sandbox");
    const body = Readable.fromWeb(upstream.body! as import('node:stream/web').ReadableStream);
    // Twilio dropping the stream midway: end ours too (the player shows an error) rather than hang.
    body.on('error', () => res.destroy());
    body.pipe(res);
  });
  return router;
}

/**
 * Twilio's voice webhooks under /webhooks/twilio/voice. Each is signed by Twilio with the agency's auth token
 * over the exact URL it asked for; anything unsigned, forged, for an unknown number or an agency without Twilio
 * set up gets 403 and changes nothing; a signed but malformed body gets 400.
 */
export function voiceWebhookRoutes(deps: {
  settings: TwilioSettingsService;
  voiceSettings: VoiceSettingsService;
  calls: CallService;
  outgoing: OutgoingCalls;
  audit: AuditRepository;
  logger: Logger;
}): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb' });

  /**
   * Finds the agency (by the number called, or for callbacks about a call we know, by that call) and checks
   * the signature. Sends 403 and returns undefined when that fails.
   */
  async function verify(req: Request, res: Response, step: string, opts: { byCall: boolean }): Promise<Signed | undefined> {
    const params = (req.body && typeof req.body === 'object' ? req.body : {}) as Params;
    let agency = typeof params.To === 'string' ? await deps.settings.byNumber(params.To) : undefined;
    if (!agency && opts.byCall) {
      const sid = [params.ParentCallSid, params.CallSid].find((s) => typeof s === 'string' && CALL_SID.test(s));
      const call = sid ? await deps.calls.bySid(sid) : undefined;
      if (call) agency = await deps.settings.byAgency(call.agencyId);
    }
    if (!(await verifyTwilioSignature(req, res, agency, deps.audit, { action: 'twilio.voice_webhook', detail: { step } })) || !agency) {
      return undefined;
    }
    return { agency, params, ivr: new Ivr(agency.publicBaseUrl) };
  }

  const twiml = (res: Response, xml: string) => res.type('text/xml').send(xml);
  const bad = (res: Response, what: string) => res.status(400).type('text/plain').send(`Bad request: ${what}`);
  const wellFormed = (s: Signed) => s.params.AccountSid === s.agency.accountSid && CALL_SID.test(s.params.CallSid ?? '');

  /** The call a signed callback is about (the caller's leg), which must be this agency's. */
  async function callOf(s: Signed, sid: string | undefined): Promise<CallRow | undefined> {
    const call = sid ? await deps.calls.bySid(sid) : undefined;
    return call && call.agencyId === s.agency.agencyId ? call : undefined;
  }

  /** The steps of the menu also accept a call whose first webhook we missed. */
  async function ivrCall(s: Signed): Promise<CallRow> {
    return (await callOf(s, s.params.CallSid)) ?? deps.calls.incoming(s.agency.agencyId, { callSid: s.params.CallSid!, from: s.params.From!, to: s.params.To! });
  }

  async function menuOrQueue(res: Response, s: Signed, call: CallRow, lang: Lang): Promise<void> {
    const services = await deps.calls.menu(s.agency.agencyId, lang);
    if (services.length) return void twiml(res, s.ivr.menu(lang, services));
    await queueUp(res, s, call, null, lang);
  }

  async function queueUp(res: Response, s: Signed, call: CallRow, serviceId: string | null, lang: Lang): Promise<void> {
    try {
      const { groupId } = await deps.calls.enterQueue(call, serviceId);
      twiml(res, s.ivr.enqueue(lang, queueName(groupId)));
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'UNAVAILABLE') throw err;
      twiml(res, s.ivr.say1(lang, PROMPTS[lang].unavailable));
    }
  }

  // 1. A call arrives: greeting and language.
  router.post(VOICE_PATH, form, async (req, res) => {
    const s = await verify(req, res, 'incoming', { byCall: false });
    if (!s) return;
    const from = s.params.From ?? '';
    if (!wellFormed(s) || !from || from.length > 64) return void bad(res, 'AccountSid, CallSid, From and To are required');
    await deps.calls.incoming(s.agency.agencyId, { callSid: s.params.CallSid!, from, to: s.params.To! });
    twiml(res, s.ivr.greeting(await deps.voiceSettings.agencyName(s.agency.agencyId)));
  });

  // 2. Language chosen (or not): the service menu, or straight to the queue when no service is offered by phone.
  router.post(`${VOICE_PATH}/language`, form, async (req, res) => {
    const s = await verify(req, res, 'language', { byCall: false });
    if (!s) return;
    if (!wellFormed(s) || !s.params.From) return void bad(res, 'AccountSid, CallSid and From are required');
    const call = await ivrCall(s);
    const attempt = attemptOf(req);
    const lang = languageFrom(s.params.Digits, s.params.SpeechResult) ?? (req.query.default === 'en' || attempt >= 1 ? 'en' : undefined);
    if (!lang) return void twiml(res, s.ivr.greeting('', attempt + 1));
    await deps.calls.setLanguage(call, lang);
    // Closed (business hours, holidays): nobody is queued; a callback or a voicemail instead.
    if (call.state === 'ivr' && !(await deps.calls.isOpen(s.agency.agencyId))) return void twiml(res, s.ivr.closed(lang));
    await menuOrQueue(res, s, { ...call, language: lang }, lang);
  });

  // 2b. Closed: the caller chose a callback or a voicemail (or nothing: a voicemail).
  router.post(`${VOICE_PATH}/closed`, form, async (req, res) => {
    const s = await verify(req, res, 'closed', { byCall: false });
    if (!s) return;
    if (!wellFormed(s) || !s.params.From) return void bad(res, 'AccountSid, CallSid and From are required');
    const call = await ivrCall(s);
    const lang = langOf(req, call.language);
    const attempt = attemptOf(req);
    let choice = req.query.default === 'voicemail' ? 'voicemail' : waitChoiceFrom(s.params.Digits, s.params.SpeechResult);
    if (!choice) {
      if (attempt < 1) return void twiml(res, s.ivr.closed(lang, attempt + 1));
      choice = 'voicemail';
    }
    try {
      if (!(await deps.calls.closedHours({ ...call, language: lang }, choice))) return void twiml(res, s.ivr.say1(lang, PROMPTS[lang].goodbye));
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'UNAVAILABLE') throw err;
      return void twiml(res, s.ivr.say1(lang, PROMPTS[lang].unavailable));
    }
    twiml(res, choice === 'callback' ? s.ivr.say1(lang, PROMPTS[lang].closedCallback) : s.ivr.voicemail(lang));
  });

  // 3. Service chosen: the call becomes a conversation with a case and waits in its group's queue.
  router.post(`${VOICE_PATH}/menu`, form, async (req, res) => {
    const s = await verify(req, res, 'menu', { byCall: false });
    if (!s) return;
    if (!wellFormed(s) || !s.params.From) return void bad(res, 'AccountSid, CallSid and From are required');
    const call = await ivrCall(s);
    const lang = langOf(req, call.language);
    const services = await deps.calls.menu(s.agency.agencyId, lang);
    const attempt = attemptOf(req);
    const digits = req.query.default === '0' ? '0' : s.params.Digits;
    let chosen = serviceFrom(services, digits, s.params.SpeechResult);
    if (chosen === undefined) {
      if (attempt < 1) return void twiml(res, s.ivr.menu(lang, services, attempt + 1));
      chosen = null;
    }
    await queueUp(res, s, { ...call, language: lang }, chosen?.id ?? null, lang);
  });

  // 4. While waiting (Twilio's waitUrl, asked again each time it finishes): place in line and the options.
  router.post(`${VOICE_PATH}/wait`, form, async (req, res) => {
    const s = await verify(req, res, 'wait', { byCall: true });
    if (!s) return;
    if (!wellFormed(s)) return void bad(res, 'AccountSid and CallSid are required');
    const call = await callOf(s, s.params.CallSid);
    const lang = langOf(req, call?.language);
    twiml(res, s.ivr.hold(lang, call ? await deps.calls.position(call) : null));
  });

  // 5. A key (or words) while waiting: callback or voicemail take the caller out of the queue.
  router.post(`${VOICE_PATH}/wait-choice`, form, async (req, res) => {
    const s = await verify(req, res, 'wait-choice', { byCall: true });
    if (!s) return;
    if (!wellFormed(s)) return void bad(res, 'AccountSid and CallSid are required');
    const call = await callOf(s, s.params.CallSid);
    const lang = langOf(req, call?.language);
    const choice = waitChoiceFrom(s.params.Digits, s.params.SpeechResult);
    if (!call || !choice || !(await deps.calls.chooseWhileWaiting(call, choice))) return void twiml(res, s.ivr.keepHolding(lang));
    twiml(res, s.ivr.leave());
  });

  // 6. The caller left the queue (Enqueue's action): callback, voicemail, hang-up (abandoned) or put through.
  router.post(`${VOICE_PATH}/enqueued`, form, async (req, res) => {
    const s = await verify(req, res, 'enqueued', { byCall: true });
    if (!s) return;
    if (!wellFormed(s) || !s.params.QueueResult) return void bad(res, 'AccountSid, CallSid and QueueResult are required');
    const call = await callOf(s, s.params.CallSid);
    if (!call) return void twiml(res, s.ivr.empty());
    twiml(res, await deps.calls.leftQueue(call, s.params.QueueResult, s.ivr));
  });

  // 7. The voicemail was recorded (Record's action): thanks and goodbye. The recording itself comes to 8.
  router.post(`${VOICE_PATH}/recorded`, form, async (req, res) => {
    const s = await verify(req, res, 'recorded', { byCall: true });
    if (!s) return;
    if (!wellFormed(s)) return void bad(res, 'AccountSid and CallSid are required');
    const lang = langOf(req);
    const got = (intOf(s.params.RecordingDuration) ?? 0) > 0 || Boolean(s.params.RecordingUrl);
    twiml(res, s.ivr.say1(lang, got ? PROMPTS[lang].voicemailThanks : PROMPTS[lang].noVoicemail));
  });

  // 8. A recording is ready (voicemail, or the call with the agent): on the case timeline, once per RecordingSid.
  router.post(`${VOICE_PATH}/recording`, form, async (req, res) => {
    const s = await verify(req, res, 'recording', { byCall: true });
    if (!s) return;
    const p = s.params;
    if (!wellFormed(s) || !RECORDING_SID.test(p.RecordingSid ?? '') || !p.RecordingUrl || !p.RecordingStatus) {
      return void bad(res, 'AccountSid, CallSid, RecordingSid, RecordingUrl and RecordingStatus are required');
    }
    const call = await callOf(s, p.CallSid);
    if (call) {
      await deps.calls.recordingReady(call, s.agency, {
        recordingSid: p.RecordingSid!,
        url: p.RecordingUrl,
        durationSeconds: intOf(p.RecordingDuration) ?? null,
        status: p.RecordingStatus,
        kind: req.query.kind === 'call' ? 'call' : 'voicemail',
      });
    }
    res.status(204).end();
  });

  // 9. The voicemail's transcription (or its failure): on the case timeline, once per recording.
  router.post(`${VOICE_PATH}/transcription`, form, async (req, res) => {
    const s = await verify(req, res, 'transcription', { byCall: true });
    if (!s) return;
    const p = s.params;
    if (!wellFormed(s) || !RECORDING_SID.test(p.RecordingSid ?? '') || !p.TranscriptionStatus) {
      return void bad(res, 'AccountSid, CallSid, RecordingSid and TranscriptionStatus are required');
    }
    const call = await callOf(s, p.CallSid);
    if (call) {
      await deps.calls.transcribed(call, {
        recordingSid: p.RecordingSid!,
        status: p.TranscriptionStatus.slice(0, 20),
        text: p.TranscriptionStatus === 'completed' ? String(p.TranscriptionText ?? '').slice(0, 8000) : null,
      });
    }
    res.status(204).end();
  });

  // 10. The agent's leg rang, was answered, ended (status callback of the dialled client or number).
  router.post(`${VOICE_PATH}/leg`, form, async (req, res) => {
    const s = await verify(req, res, 'leg', { byCall: true });
    if (!s) return;
    const p = s.params;
    if (!wellFormed(s) || !CALL_SID.test(p.ParentCallSid ?? '') || !p.CallStatus) {
      return void bad(res, 'AccountSid, CallSid, ParentCallSid and CallStatus are required');
    }
    const call = await callOf(s, p.ParentCallSid);
    if (call && (!req.query.conversation || req.query.conversation === call.conversationId)) {
      await deps.calls.legProgress(call, p.CallSid!, p.CallStatus);
    }
    res.status(204).end();
  });

  // 11. The Dial to the agent ended (its action): the call is over, or the agent missed it and the caller waits again.
  router.post(`${VOICE_PATH}/dialed`, form, async (req, res) => {
    const s = await verify(req, res, 'dialed', { byCall: true });
    if (!s) return;
    const p = s.params;
    if (!wellFormed(s) || !p.DialCallStatus) return void bad(res, 'AccountSid, CallSid and DialCallStatus are required');
    const call = await callOf(s, p.CallSid);
    if (!call) return void twiml(res, s.ivr.empty());
    twiml(res, await deps.calls.dialEnded(call, { dialStatus: p.DialCallStatus, dialDuration: intOf(p.DialCallDuration), callStatus: p.CallStatus }, s.ivr));
  });

  // 12. The caller's call ended (the number's status callback): abandoned if still waiting, else completed.
  router.post(`${VOICE_PATH}/status`, form, async (req, res) => {
    const s = await verify(req, res, 'status', { byCall: true });
    if (!s) return;
    const p = s.params;
    if (!wellFormed(s) || !p.CallStatus) return void bad(res, 'AccountSid, CallSid and CallStatus are required');
    const call = await callOf(s, p.CallSid);
    if (call) await deps.calls.callEnded(call, p.CallStatus, intOf(p.CallDuration));
    res.status(204).end();
  });

  /**
   * The agency whose Twilio account a browser call is on (a call from the browser is "to" the constituent, so
   * the account identifies it), checked by the signature; 403 and an audit entry otherwise.
   */
  async function verifyAccount(req: Request, res: Response, step: string): Promise<{ agency: TwilioAgency & { fromNumber: string }; params: Params } | undefined> {
    const params = (req.body && typeof req.body === 'object' ? req.body : {}) as Params;
    let agency: (TwilioAgency & { fromNumber: string }) | undefined;
    if (typeof params.AccountSid === 'string' && /^AC[0-9a-fA-F]{32}$/.test(params.AccountSid)) {
      for (const id of await deps.outgoing.agencyIdsByAccount(params.AccountSid)) {
        const a = await deps.settings.byAgency(id);
        if (a && signedBy(req, a)) {
          agency = a;
          break;
        }
      }
    }
    if (!agency) {
      await refuseWebhook(req, res, deps.audit, { action: 'twilio.voice_webhook', reason: 'bad_signature', detail: { step } });
      return undefined;
    }
    return { agency, params };
  }

  // 13. An agent calls from the browser (the TwiML App's voice URL): only an agent or supervisor of this agency,
  // only to one of its constituents' numbers, shown the agency's number; anything else is refused and hung up.
  router.post(`${VOICE_PATH}/outgoing`, form, async (req, res) => {
    const v = await verifyAccount(req, res, 'outgoing');
    if (!v) return;
    const { agency, params: p } = v;
    if (!CALL_SID.test(p.CallSid ?? '') || !p.From) return void bad(res, 'CallSid and From are required');
    const ivr = new Ivr(agency.publicBaseUrl);
    const decision = await deps.outgoing.decide(agency.agencyId, { from: p.From, to: p.To ?? '', caseId: p.CaseId });
    await deps.audit
      .record({
        agencyId: agency.agencyId,
        actorKind: decision.ok ? 'staff' : 'anonymous',
        actorId: decision.ok ? decision.agentId : null,
        action: 'call.outgoing',
        outcome: decision.ok ? 'success' : 'denied',
        sourceIp: req.ip,
        detail: decision.ok ? { caseId: decision.caseId } : { reason: decision.reason },
      })
      .catch(() => undefined);
    if (!decision.ok) return void twiml(res, ivr.say1('en', PROMPTS.en.outgoingRefused));
    if (decision.caseId) {
      await deps.outgoing.logOnce(decision.caseId, 'call.outgoing', decision.agentId, p.CallSid!, { to: decision.to });
    }
    twiml(res, ivr.outgoing(decision.to, agency.fromNumber, decision.caseId));
  });

  // 14. The browser call ended (its Dial's action): how, and how long, on the case it was placed from.
  router.post(`${VOICE_PATH}/outgoing/ended`, form, async (req, res) => {
    const v = await verifyAccount(req, res, 'outgoing-ended');
    if (!v) return;
    const p = v.params;
    if (!CALL_SID.test(p.CallSid ?? '') || !p.DialCallStatus) return void bad(res, 'CallSid and DialCallStatus are required');
    const caseId = typeof req.query.case === 'string' ? req.query.case : undefined;
    if (caseId && (await deps.outgoing.caseOfAgency(v.agency.agencyId, caseId))) {
      await deps.outgoing.logOnce(caseId, 'call.outgoing_ended', null, p.CallSid!, {
        status: p.DialCallStatus.slice(0, 20),
        durationSeconds: intOf(p.DialCallDuration) ?? null,
      });
    }
    const vr = new twilio.twiml.VoiceResponse();
    vr.hangup();
    twiml(res, vr.toString());
  });

  return router;
}
