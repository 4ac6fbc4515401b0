import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type { TwilioAgency } from './twilio-settings.service.js';

type TwilioClient = ReturnType<typeof twilio>;

/**
 * Sends Twilio's REST calls to another host with the same path (an offline copy of the API in tests). Twilio's
 * own auth, form encoding and error mapping stay in force; there is no base-URL option in the library.
 */
class RedirectingRequestClient extends twilio.RequestClient {
  constructor(private readonly baseUrl: string) {
    super({ autoRetry: false, timeout: 10_000 });
  }
  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    const original = new URL(opts.uri);
    const target = new URL(original.pathname + original.search, this.baseUrl);
    opts.headers = { ...opts.headers, 'X-Twilio-Product': original.hostname.split('.')[0] ?? 'api' };
    return super.request<TData>({ ...opts, uri: target.href });
  }
}

/** The media a constituent sent, fetched and checked. */
export interface FetchedMedia {
  bytes: Uint8Array;
  contentType: string;
}

export class MediaRefused extends Error {}

/** Twilio's REST client per agency account, and the one place that fetches from Twilio's media host. */
export class TwilioClients {
  private readonly cache = new Map<string, TwilioClient>();

  /** `apiBaseUrl`: unset in production (Twilio itself); tests give a local fake. */
  constructor(private readonly apiBaseUrl?: string) {}

  forAgency(agency: Pick<TwilioAgency, 'accountSid' | 'authToken'>): TwilioClient {
    const key = `${agency.accountSid}:${agency.authToken}`;
    let client = this.cache.get(key);
    if (!client) {
      client = twilio(agency.accountSid, agency.authToken, {
        httpClient: this.apiBaseUrl ? new RedirectingRequestClient(this.apiBaseUrl) : new twilio.RequestClient({ timeout: 10_000 }),
      });
      // Settings change rarely; a small cache keeps old tokens from piling up.
      if (this.cache.size > 50) this.cache.clear();
      this.cache.set(key, client);
    }
    return client;
  }

  /**
   * Fetches one MMS attachment. Only URLs on Twilio's API host under this account are accepted (a webhook
   * names the URL, so anything else could make us fetch an attacker's address); the body is capped while it
   * streams and its type must be one of `allowedTypes`.
   */
  async fetchMedia(
    agency: Pick<TwilioAgency, 'accountSid' | 'authToken'>,
    mediaUrl: string,
    limits: { maxBytes: number; allowedTypes: readonly string[]; timeoutMs?: number },
  ): Promise<FetchedMedia> {
    let url: URL;
    try {
      url = new URL(mediaUrl);
    } catch {
      throw new MediaRefused('not a URL');
    }
    const accountPath = `/2010-04-01/Accounts/${agency.accountSid}/Messages/`;
    if (url.protocol !== 'https:' || url.hostname !== 'api.twilio.com' || !url.pathname.startsWith(accountPath) || url.username || url.port) {
      throw new MediaRefused('not a media address of this Twilio account');
    }
    const target = this.apiBaseUrl ? new URL(url.pathname, this.apiBaseUrl) : url;
    const res = await fetch(target, {
      headers: { Authorization: `Basic ${Buffer.from(`${agency.accountSid}:${agency.authToken}`).toString('base64')}` },
      // Twilio answers with a redirect to its storage; fetch drops the Authorization header on a cross-origin hop.
      redirect: 'follow',
      signal: AbortSignal.timeout(limits.timeoutMs ?? 8_000),
    });
    if (!res.ok || !res.body) throw new MediaRefused(`Twilio answered ${res.status}`);
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (!limits.allowedTypes.includes(contentType)) {
      await res.body.cancel();
      throw new MediaRefused(`type ${contentType || 'unknown'} is not accepted`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > limits.maxBytes) {
      await res.body.cancel();
      throw new MediaRefused('too large');
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > limits.maxBytes) throw new MediaRefused('too large');
      chunks.push(chunk);
    }
    return { bytes: Buffer.concat(chunks), contentType };
  }
}
