import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Signatures between CaseBridge instances (Ed25519, node:crypto). A request signs its method, fixed path, time,
 * a fresh nonce, its idempotency key and the SHA-256 of its exact body bytes; the answer signs its status, the
 * request's nonce (so an answer cannot be replayed onto another request), its own time and its body digest.
 */

export const EXCHANGE_PATH = '/exchange/v1/events';
/** Requests older or newer than this are refused; nonces are kept for twice as long, so a replay cannot outlive them. */
export const MAX_SKEW_MS = 5 * 60_000;

export const H = {
  key: 'x-casebridge-key',
  timestamp: 'x-casebridge-timestamp',
  nonce: 'x-casebridge-nonce',
  idempotency: 'x-casebridge-idempotency-key',
  signature: 'x-casebridge-signature',
} as const;

export function newKeyPair(): { keyId: string; publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    keyId: `cbx-${randomUUID()}`,
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A PEM that is an Ed25519 public key, or undefined (anything else is refused at registration). */
export function parsePublicKey(pem: string): KeyObject | undefined {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : undefined;
  } catch {
    return undefined;
  }
}

export const digest = (body: Buffer | string) => createHash('sha256').update(body).digest('hex');

export function requestPayload(method: string, path: string, ts: string, nonce: string, idempotencyKey: string, body: Buffer | string): string {
  return ['casebridge-exchange-v1-request', method.toUpperCase(), path, ts, nonce, idempotencyKey, digest(body)].join('\n');
}

export function responsePayload(status: number, requestNonce: string, ts: string, body: Buffer | string): string {
  return ['casebridge-exchange-v1-response', String(status), requestNonce, ts, digest(body)].join('\n');
}

export function signWith(privateKeyPem: string, payload: string): string {
  return sign(null, Buffer.from(payload), createPrivateKey(privateKeyPem)).toString('base64');
}

export function verifyWith(publicKeyPem: string, payload: string, signature: string): boolean {
  const key = parsePublicKey(publicKeyPem);
  if (!key || !/^[A-Za-z0-9+/]+=*$/.test(signature)) return false;
  try {
    return verify(null, Buffer.from(payload), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

export const newNonce = () => randomBytes(18).toString('base64url');

/** Timestamps are milliseconds since the epoch, digits only. */
export function withinSkew(ts: string, now: number): boolean {
  if (!/^\d{13}$/.test(ts)) return false;
  return Math.abs(now - Number(ts)) <= MAX_SKEW_MS;
}
