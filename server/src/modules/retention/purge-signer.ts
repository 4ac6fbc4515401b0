import { createHash, createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Signs purge reports (issue #11) with Ed25519 under a key derived from the server secret, and hashes the ids a
 * report lists with a per-agency HMAC key so the report names no case. The public key is published (PEM) so a
 * report can be checked anywhere, e.g. `openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in body -sigfile sig`.
 */
export class PurgeSigner {
  private readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
  readonly keyId: string;

  constructor(private readonly serverSecret: string) {
    const seed = createHmac('sha256', serverSecret).update('casebridge:purge-report:ed25519').digest();
    // PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    this.privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey(this.privateKey);
    this.publicKeyPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    this.keyId = createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex').slice(0, 16);
  }

  sign(body: string): string {
    return sign(null, Buffer.from(body, 'utf8'), this.privateKey).toString('base64');
  }

  verify(body: string, signature: string): boolean {
    try {
      return verify(null, Buffer.from(body, 'utf8'), createPublicKey(this.publicKeyPem), Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }

  /** A case id as a report lists it: HMAC-SHA256 under the agency's own key (not reversible, not comparable across agencies). */
  hashId(agencyId: string, id: string): string {
    const key = createHmac('sha256', this.serverSecret).update(`casebridge:purge-ids:${agencyId}`).digest();
    return createHmac('sha256', key).update(id).digest('hex');
  }
}
