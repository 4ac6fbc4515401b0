import type { AttachmentRef } from '@casebridge/shared';

type Accepted = AttachmentRef['contentType'];

const startsWith = (b: Uint8Array, sig: number[], at = 0) => sig.every((v, i) => b[at + i] === v);

/**
 * The file's real type from its first bytes; the name and the client's Content-Type are ignored.
 * Anything else (HTML, SVG, executables renamed .png, polyglots without a leading signature) is refused.
 */
export function sniffContentType(bytes: Uint8Array): Accepted | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) {
    return 'image/gif';
  }
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes, [0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  if (startsWith(bytes, [0x25, 0x50, 0x44, 0x46, 0x2d])) return 'application/pdf';
  return null;
}

/** A display name safe to store and to put in a Content-Disposition header. */
export function safeFilename(raw: string | undefined, contentType: Accepted): string {
  const ext = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp', 'application/pdf': 'pdf' }[
    contentType
  ];
  let name = (raw ?? '').normalize('NFC').split(/[\\/]/).pop() ?? '';
  // Control characters, quotes and bidi overrides could break headers or mislead a reader.
  name = name.replace(/[\u0000-\u001f\u007f"<>|:*?\u202a-\u202e\u2066-\u2069]/g, '').trim();
  name = name.replace(/\.[A-Za-z0-9]{1,8}$/, '');
  if (!name || /^\.+$/.test(name)) name = 'file';
  return `${name.slice(0, 100)}.${ext}`;
}
