/**
 * Limits and versions shared by every side, with no dependencies, so the widget can import them
 * without pulling zod into its bundle.
 */

/** Bump when a change would break an older client; the server refuses a mismatch at the handshake. */
export const PROTOCOL_VERSION = 1;
/** Largest socket frame the server accepts, in bytes; a larger one closes the socket. */
export const MAX_SOCKET_PAYLOAD_BYTES = 64 * 1024;
/** Longest message body a person may send, in characters. */
export const MAX_MESSAGE_LENGTH = 4000;
/** Longest page a catch-up returns; a client asks again from the last seq it got. */
export const MAX_SYNC_PAGE = 500;
/** Largest file a constituent or agent may attach, in bytes. */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;
/** File types accepted, decided from the file's bytes. */
export const ATTACHMENT_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf'] as const;
export const MAX_ATTACHMENTS_PER_MESSAGE = 5;
