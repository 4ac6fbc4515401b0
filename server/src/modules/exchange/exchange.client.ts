import type { ExchangeEvent } from '@casebridge/shared';
import { EXCHANGE_PATH, H, newNonce, requestPayload, responsePayload, signWith, verifyWith, withinSkew } from './exchange.signing.js';

export interface SendResult {
  /** Delivered and answered with a valid signature. */
  ok: boolean;
  /** Worth trying again later (network, partner down, 5xx, unsigned answer); false: the partner refused it for good. */
  retry: boolean;
  status: number | null;
  data?: Record<string, unknown>;
  error?: string;
}

const TIMEOUT_MS = 10_000;
const MAX_ANSWER_BYTES = 256 * 1024;

/**
 * Calls one partner. The URL is always the partner's registered base URL plus our one fixed path: nothing in a
 * request or an answer can point us anywhere else, and redirects are not followed.
 */
export async function sendEvent(opts: {
  baseUrl: string;
  keyId: string;
  privateKey: string;
  /** The partner's active public keys: the answer must be signed by one of them. */
  theirKeys: { keyId: string; publicKey: string }[];
  event: ExchangeEvent;
}): Promise<SendResult> {
  const body = JSON.stringify(opts.event);
  const ts = String(Date.now());
  const nonce = newNonce();
  const idem = `${opts.event.handoffId}:${opts.event.seq}`;
  const signature = signWith(opts.privateKey, requestPayload('POST', EXCHANGE_PATH, ts, nonce, idem, body));
  let res: Response;
  try {
    res = await fetch(new URL(EXCHANGE_PATH, opts.baseUrl), {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
      headers: {
        'content-type': 'application/json',
        [H.key]: opts.keyId,
        [H.timestamp]: ts,
        [H.nonce]: nonce,
        [H.idempotency]: idem,
        [H.signature]: signature,
      },
      body,
    });
  } catch (err) {
    return { ok: false, retry: true, status: null, error: `unreachable: ${(err as Error).name === 'TimeoutError' ? 'timed out' : ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}` };
  }
  const text = Buffer.from(await res.arrayBuffer()).subarray(0, MAX_ANSWER_BYTES);
  const keyId = res.headers.get(H.key) ?? '';
  const answerTs = res.headers.get(H.timestamp) ?? '';
  const answerSig = res.headers.get(H.signature) ?? '';
  const key = opts.theirKeys.find((k) => k.keyId === keyId);
  const signed = Boolean(key) && withinSkew(answerTs, Date.now()) && verifyWith(key!.publicKey, responsePayload(res.status, nonce, answerTs, text), answerSig);
  if (!signed) {
    // An unsigned answer proves nothing (a proxy, an outage page, someone else): keep the event and try again.
    return { ok: false, retry: true, status: res.status, error: `answer ${res.status} not signed by the partner` };
  }
  let parsed: { ok?: boolean; data?: Record<string, unknown>; error?: { code?: string; message?: string } } = {};
  try {
    parsed = JSON.parse(text.toString('utf8')) as typeof parsed;
  } catch {
    return { ok: false, retry: true, status: res.status, error: 'answer is not JSON' };
  }
  if (res.status === 200 && parsed.ok) return { ok: true, retry: false, status: 200, data: parsed.data ?? {} };
  const why = `${res.status} ${parsed.error?.code ?? ''} ${parsed.error?.message ?? ''}`.trim();
  // 401 may be a key the partner has not registered yet (rotation in progress), 429/5xx are passing: retry.
  const retry = res.status === 401 || res.status === 429 || res.status >= 500;
  return { ok: false, retry, status: res.status, error: why };
}
