import twilio from 'twilio';

type VoiceResponse = InstanceType<typeof twilio.twiml.VoiceResponse>;
export type Lang = 'en' | 'es';

/** Where the webhooks live; every URL Twilio is given is absolute under the agency's public address. */
export const VOICE_PATH = '/webhooks/twilio/voice';

const SAY = {
  en: { voice: 'Polly.Joanna', language: 'en-US' },
  es: { voice: 'Polly.Lupe', language: 'es-US' },
} as const;
const SPEECH = { en: 'en-US', es: 'es-US' } as const;

/** Everything the caller hears, in both languages. */
export const PROMPTS = {
  en: {
    welcome: (agency: string) => `Thank you for calling ${agency}.`,
    chooseLanguage: 'For English, press 1.',
    notUnderstood: 'Sorry, I did not understand that.',
    menuIntro: 'Please tell us what you are calling about.',
    menuItem: (title: string, digit: number) => `For ${title}, press ${digit}.`,
    menuOther: 'For anything else, press 0, or say what you need.',
    connecting: 'Thank you. Please hold while we connect you to the next available person.',
    position: (n: number) => (n <= 1 ? 'You are next in line.' : `You are caller number ${n} in line.`),
    hold: 'Thank you for holding. Your call is important to us.',
    options: 'To have us call you back instead, press 1. To leave a voicemail, press 2.',
    callbackConfirmed: 'Thank you. We will call you back at the number you are calling from. Goodbye.',
    voicemail: 'Please leave your message after the tone. Press the pound key when you are done.',
    voicemailThanks: 'Thank you. We have your message and will get back to you. Goodbye.',
    noVoicemail: 'We did not receive a message. Goodbye.',
    agentMissed: 'Sorry, that person could not take your call. Please keep holding.',
    putThrough: 'Connecting you now.',
    goodbye: 'Thank you for calling. Goodbye.',
    unavailable: 'Sorry, we cannot take your call right now. Please try again later.',
    closed: 'Our office is closed right now.',
    closedOptions: 'To have us call you back when we are open, press 1. To leave a message, press 2, or stay on the line.',
    closedCallback: 'Thank you. We will call you back at the number you are calling from when we are open. Goodbye.',
    outgoingRefused: 'This call cannot be placed. Goodbye.',
  },
  es: {
    welcome: (agency: string) => `Gracias por llamar a ${agency}.`,
    chooseLanguage: 'Para español, oprima 2.',
    notUnderstood: 'Disculpe, no le entendí.',
    menuIntro: 'Díganos el motivo de su llamada.',
    menuItem: (title: string, digit: number) => `Para ${title}, oprima ${digit}.`,
    menuOther: 'Para cualquier otro asunto, oprima 0 o diga lo que necesita.',
    connecting: 'Gracias. Permanezca en la línea mientras le comunicamos con la próxima persona disponible.',
    position: (n: number) => (n <= 1 ? 'Usted es el próximo en la fila.' : `Usted es la persona número ${n} en la fila.`),
    hold: 'Gracias por esperar. Su llamada es importante para nosotros.',
    options: 'Si prefiere que le devolvamos la llamada, oprima 1. Para dejar un mensaje de voz, oprima 2.',
    callbackConfirmed: 'Gracias. Le devolveremos la llamada al número desde el que llama. Adiós.',
    voicemail: 'Deje su mensaje después del tono. Oprima la tecla de numeral cuando termine.',
    voicemailThanks: 'Gracias. Recibimos su mensaje y nos comunicaremos con usted. Adiós.',
    noVoicemail: 'No recibimos ningún mensaje. Adiós.',
    agentMissed: 'Disculpe, esa persona no pudo atender su llamada. Por favor, siga esperando.',
    putThrough: 'Le estamos comunicando.',
    goodbye: 'Gracias por llamar. Adiós.',
    unavailable: 'Disculpe, no podemos atender su llamada en este momento. Por favor, intente más tarde.',
    closed: 'Nuestra oficina está cerrada en este momento.',
    closedOptions: 'Si desea que le devolvamos la llamada cuando estemos abiertos, oprima 1. Para dejar un mensaje, oprima 2 o permanezca en la línea.',
    closedCallback: 'Gracias. Le devolveremos la llamada al número desde el que llama cuando estemos abiertos. Adiós.',
    outgoingRefused: 'No se puede realizar esta llamada. Adiós.',
  },
} as const;

export interface MenuService {
  id: string;
  title: string;
  keywords: string[];
}

/** Builds the TwiML of each IVR step. */
export class Ivr {
  constructor(private readonly baseUrl: string) {}

  url(step: string, query: Record<string, string> = {}): string {
    const q = new URLSearchParams(query).toString();
    return `${this.baseUrl}${VOICE_PATH}/${step}${q ? `?${q}` : ''}`;
  }

  private say(vr: VoiceResponse | ReturnType<VoiceResponse['gather']>, lang: Lang, text: string): void {
    vr.say(SAY[lang], text);
  }

  /** Step 1: greeting and the choice of language (keys or speech). */
  greeting(agencyName: string, attempt = 0): string {
    const vr = new twilio.twiml.VoiceResponse();
    if (attempt > 0) this.say(vr, 'en', PROMPTS.en.notUnderstood);
    else this.say(vr, 'en', PROMPTS.en.welcome(agencyName));
    const g = vr.gather({
      input: ['dtmf', 'speech'],
      numDigits: 1,
      timeout: 5,
      action: this.url('language', { attempt: String(attempt) }),
      method: 'POST',
      language: 'en-US',
      hints: 'English, Spanish, Español',
    });
    this.say(g, 'en', PROMPTS.en.chooseLanguage);
    this.say(g, 'es', PROMPTS.es.chooseLanguage);
    // No answer: English.
    vr.redirect({ method: 'POST' }, this.url('language', { attempt: String(attempt), default: 'en' }));
    return vr.toString();
  }

  /** Step 2: the agency's services (keys 1–9, 0 for anything else, or speech). */
  menu(lang: Lang, services: MenuService[], attempt = 0): string {
    const vr = new twilio.twiml.VoiceResponse();
    if (attempt > 0) this.say(vr, lang, PROMPTS[lang].notUnderstood);
    const g = vr.gather({
      input: ['dtmf', 'speech'],
      numDigits: 1,
      timeout: 6,
      action: this.url('menu', { lang, attempt: String(attempt) }),
      method: 'POST',
      language: SPEECH[lang],
      hints: services.map((s) => s.title).join(', '),
    });
    const p = PROMPTS[lang];
    this.say(g, lang, p.menuIntro);
    services.forEach((s, i) => this.say(g, lang, p.menuItem(s.title, i + 1)));
    this.say(g, lang, p.menuOther);
    // Nothing chosen: the general line.
    vr.redirect({ method: 'POST' }, this.url('menu', { lang, attempt: String(attempt), default: '0' }));
    return vr.toString();
  }

  /** Outside business hours, instead of the menu: a callback when the office opens, or a voicemail (the default). */
  closed(lang: Lang, attempt = 0): string {
    const vr = new twilio.twiml.VoiceResponse();
    const p = PROMPTS[lang];
    this.say(vr, lang, attempt > 0 ? p.notUnderstood : p.closed);
    const g = vr.gather({
      input: ['dtmf', 'speech'],
      numDigits: 1,
      timeout: 6,
      action: this.url('closed', { lang, attempt: String(attempt) }),
      method: 'POST',
      language: SPEECH[lang],
      hints: lang === 'es' ? 'devolver la llamada, mensaje de voz' : 'call back, callback, voicemail, message',
    });
    this.say(g, lang, p.closedOptions);
    // Nothing chosen: a voicemail.
    vr.redirect({ method: 'POST' }, this.url('closed', { lang, attempt: String(attempt), default: 'voicemail' }));
    return vr.toString();
  }

  /**
   * An agent's call from the browser (the TwiML App's voice URL): the constituent's number, shown the agency's
   * number; the Dial action hears how it ended.
   */
  outgoing(to: string, callerId: string, caseId: string | null): string {
    const vr = new twilio.twiml.VoiceResponse();
    const dial = vr.dial({
      callerId,
      timeout: 30,
      answerOnBridge: true,
      action: this.url('outgoing/ended', caseId ? { case: caseId } : {}),
      method: 'POST',
    });
    dial.number(to);
    return vr.toString();
  }

  /** Step 3: the caller waits in the group's queue (Twilio's queue holds the call; ours orders the work). */
  enqueue(lang: Lang, queueName: string, intro: string = PROMPTS[lang].connecting): string {
    const vr = new twilio.twiml.VoiceResponse();
    this.say(vr, lang, intro);
    vr.enqueue(
      { waitUrl: this.url('wait', { lang }), waitUrlMethod: 'POST', action: this.url('enqueued', { lang }), method: 'POST' },
      queueName,
    );
    return vr.toString();
  }

  /** While waiting (Twilio asks again when it ends): the place in line, then a chance to leave the queue. */
  hold(lang: Lang, position: number | null): string {
    const vr = new twilio.twiml.VoiceResponse();
    const p = PROMPTS[lang];
    if (position !== null) this.say(vr, lang, p.position(position));
    this.say(vr, lang, p.hold);
    const g = vr.gather({
      input: ['dtmf', 'speech'],
      numDigits: 1,
      timeout: 10,
      action: this.url('wait-choice', { lang }),
      method: 'POST',
      language: SPEECH[lang],
      hints: lang === 'es' ? 'devolver la llamada, mensaje de voz' : 'call back, callback, voicemail, message',
    });
    this.say(g, lang, p.options);
    vr.pause({ length: 10 });
    return vr.toString();
  }

  /** The caller chose to leave the queue (the Enqueue action URL then hears QueueResult=leave). */
  leave(): string {
    const vr = new twilio.twiml.VoiceResponse();
    vr.leave();
    return vr.toString();
  }

  /** A choice while waiting that was not understood: back to holding (Twilio asks the wait URL again). */
  keepHolding(lang: Lang): string {
    const vr = new twilio.twiml.VoiceResponse();
    this.say(vr, lang, PROMPTS[lang].notUnderstood);
    return vr.toString();
  }

  callbackConfirmed(lang: Lang): string {
    const vr = new twilio.twiml.VoiceResponse();
    this.say(vr, lang, PROMPTS[lang].callbackConfirmed);
    vr.hangup();
    return vr.toString();
  }

  /** Voicemail: the recording and its transcription come back to their own status callbacks. */
  voicemail(lang: Lang): string {
    const vr = new twilio.twiml.VoiceResponse();
    this.say(vr, lang, PROMPTS[lang].voicemail);
    vr.record({
      action: this.url('recorded', { lang }),
      method: 'POST',
      maxLength: 180,
      timeout: 8,
      playBeep: true,
      finishOnKey: '#',
      trim: 'trim-silence',
      recordingStatusCallback: this.url('recording', { kind: 'voicemail' }),
      recordingStatusCallbackMethod: 'POST',
      recordingStatusCallbackEvent: ['completed'],
      transcribe: true,
      transcribeCallback: this.url('transcription'),
    });
    this.say(vr, lang, PROMPTS[lang].noVoicemail);
    vr.hangup();
    return vr.toString();
  }

  say1(lang: Lang, text: string, hangup = true): string {
    const vr = new twilio.twiml.VoiceResponse();
    this.say(vr, lang, text);
    if (hangup) vr.hangup();
    return vr.toString();
  }

  /**
   * Puts the waiting caller through to an agent (sent with the REST API, which takes the call out of the queue):
   * their browser (a Voice SDK client identity) or their phone. The call is recorded from the answer; the
   * agent's leg reports ringing and answering; the Dial action hears how it ended.
   */
  bridge(lang: Lang, target: { client: string } | { number: string; callerId: string }, conversationId: string): string {
    const vr = new twilio.twiml.VoiceResponse();
    this.say(vr, lang, PROMPTS[lang].putThrough);
    const dial = vr.dial({
      action: this.url('dialed', { lang, conversation: conversationId }),
      method: 'POST',
      timeout: 20,
      answerOnBridge: true,
      record: 'record-from-answer-dual',
      recordingStatusCallback: this.url('recording', { kind: 'call' }),
      recordingStatusCallbackMethod: 'POST',
      recordingStatusCallbackEvent: ['completed'],
      ...('number' in target ? { callerId: target.callerId } : {}),
    });
    const leg = {
      statusCallback: this.url('leg', { conversation: conversationId }),
      statusCallbackMethod: 'POST',
    };
    if ('client' in target) dial.client({ ...leg, statusCallbackEvent: ['ringing', 'answered', 'completed'] }, target.client);
    else dial.number({ ...leg, statusCallbackEvent: ['ringing', 'answered', 'completed'] }, target.number);
    return vr.toString();
  }

  empty(): string {
    return new twilio.twiml.VoiceResponse().toString();
  }
}

const strip = (s: string) =>
  s
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9 ]+/g, ' ');

/** Which language a caller asked for by key or by voice; undefined if neither is clear. */
export function languageFrom(digits: string | undefined, speech: string | undefined): Lang | undefined {
  if (digits === '1') return 'en';
  if (digits === '2') return 'es';
  const said = strip(speech ?? '');
  if (/\b(espanol|spanish|castellano)\b/.test(said)) return 'es';
  if (/\b(english|ingles)\b/.test(said)) return 'en';
  return undefined;
}

/**
 * The service a caller chose: a key 1–9 picks it in menu order, 0 the general line (null); speech matches the
 * words of a title or a keyword. undefined: not understood.
 */
export function serviceFrom(services: MenuService[], digits: string | undefined, speech: string | undefined): MenuService | null | undefined {
  if (digits) {
    if (digits === '0') return null;
    const n = Number(digits);
    return Number.isInteger(n) && n >= 1 && n <= services.length ? services[n - 1] : undefined;
  }
  const said = strip(speech ?? '');
  if (!said.trim()) return undefined;
  if (/\b(operator|agent|representative|person|anything else|other|operadora?|agente|persona|otro)\b/.test(said)) return null;
  const words = new Set(said.split(/\s+/).filter(Boolean));
  let best: { s: MenuService; score: number } | undefined;
  for (const s of services) {
    const terms = [...strip(s.title).split(/\s+/).filter((w) => w.length >= 4), ...s.keywords.map(strip)];
    const score = terms.filter((t) => words.has(t.trim()) || (t.includes(' ') && said.includes(t))).length;
    if (score > 0 && (!best || score > best.score)) best = { s, score };
  }
  return best?.s;
}

/** What the caller chose while waiting. */
export function waitChoiceFrom(digits: string | undefined, speech: string | undefined): 'callback' | 'voicemail' | undefined {
  if (digits === '1') return 'callback';
  if (digits === '2') return 'voicemail';
  const said = strip(speech ?? '');
  if (/\b(call ?back|call me|devolver|devuelvan|llamen)\b/.test(said)) return 'callback';
  if (/\b(voicemail|voice mail|message|mensaje|buzon)\b/.test(said)) return 'voicemail';
  return undefined;
}
