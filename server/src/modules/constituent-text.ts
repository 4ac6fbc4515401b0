/**
 * What the agency's system says to a constituent, in the language of their conversation (English or Spanish).
 * These lines reach the widget, texts, email and the portal; staff see the same words on the timeline, because
 * the transcript records what the constituent was told.
 */
export type ConstituentLanguage = 'en' | 'es';

export const languageOf = (value: string | null | undefined): ConstituentLanguage => (value === 'es' ? 'es' : 'en');

const en = {
  secureRequested: (who: string, label: string) => `${who} asked for ${label} through a secure form. It will not appear in this chat.`,
  secureProvided: (label: string) => `Secure value provided: ${label}.`,
  supervisorJoined: (who: string) => `${who} (supervisor) joined the conversation.`,
  awaitingInfo: (reference: string, request: string) => `To continue with case ${reference} we need: ${request}`,
  agentReadyByText: (agent: string) => `${agent} is ready to help you now. Reply here by text, or go back to the chat.`,
  partnerHelping: (partner: string, agent: string) =>
    `${partner} is now helping you (${agent}). They have your conversation so far, so you do not need to repeat anything. Just keep writing here.`,
};

const es: typeof en = {
  secureRequested: (who, label) => `${who} le pidió ${label} mediante un formulario seguro. No aparecerá en este chat.`,
  secureProvided: (label) => `Dato seguro enviado: ${label}.`,
  supervisorJoined: (who) => `${who} (supervisión) se unió a la conversación.`,
  awaitingInfo: (reference, request) => `Para continuar con su caso ${reference} necesitamos: ${request}`,
  agentReadyByText: (agent) => `${agent} ya puede atenderle. Responda aquí por mensaje de texto o vuelva al chat.`,
  partnerHelping: (partner, agent) =>
    `${partner} le atiende ahora (${agent}). Tienen su conversación hasta aquí, así que no necesita repetir nada. Siga escribiendo aquí.`,
};

export function constituentText(language: string | null | undefined): typeof en {
  return languageOf(language) === 'es' ? es : en;
}
