import type { TwilioAgency } from '../twilio/twilio-settings.service.js';

export class RecordingRefused extends Error {}

const AUDIO = new Set(['audio/mpeg', 'audio/mp3', 'audio/wav', 'audio/x-wav', 'audio/wave']);

/**
 * Fetches a call recording as MP3 from Twilio with the account's credentials. Only a recording URL of this
 * account on Twilio's API host is fetched (the stored URL was checked when it arrived; checked again here);
 * in tests the same path is asked of the local fake.
 */
export async function fetchRecording(
  apiBaseUrl: string | undefined,
  agency: Pick<TwilioAgency, 'accountSid' | 'authToken'>,
  recordingUrl: string,
): Promise<Response> {
  const url = new URL(recordingUrl);
  const allowed = new RegExp(`^/2010-04-01/Accounts/${agency.accountSid}/Recordings/RE[0-9a-fA-F]{32}$`);
  if (url.protocol !== 'https:' || url.hostname !== 'api.twilio.com' || url.port || url.username || !allowed.test(url.pathname)) {
    throw new RecordingRefused('not a recording of this Twilio account');
  }
  const path = `${url.pathname}.mp3`;
  const target = apiBaseUrl ? new URL(path, apiBaseUrl) : new URL(path, 'https://api.twilio.com');
  const res = await fetch(target, {
    headers: { Authorization: `Basic ${Buffer.from(`${agency.accountSid}:${agency.authToken}`).toString('base64')}` },
    redirect: 'follow',
    signal: AbortSignal.timeout(15_000),
  });
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!res.ok || !res.body) throw new RecordingRefused(`Twilio answered ${res.status}`);
  if (!AUDIO.has(type)) {
    await res.body.cancel();
    throw new RecordingRefused(`type ${type || 'unknown'} is not audio`);
  }
  return res;
}
