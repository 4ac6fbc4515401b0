import { z } from 'zod';

/**
 * Every error CaseBridge returns over HTTP or in a socket ack carries one of these codes.
 * The HTTP status for each lives in the server; clients branch on the code, never on the message.
 */
export const ErrorCode = z.enum([
  'INVALID_PAYLOAD',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'CSRF_FAILED',
  'RATE_LIMITED',
  'PAYLOAD_TOO_LARGE',
  'UNKNOWN_EVENT',
  'UNAVAILABLE',
  'INTERNAL',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** One problem with one field of a request; `path` names the field at fault (e.g. `["body"]`). */
export const ErrorIssue = z.object({
  path: z.array(z.union([z.string(), z.number()])),
  message: z.string(),
});
export type ErrorIssue = z.infer<typeof ErrorIssue>;

/** The error body: `{ error: ApiError }` over HTTP, `{ ok: false, error: ApiError }` in an ack. */
export const ApiError = z.object({
  code: ErrorCode,
  message: z.string(),
  issues: z.array(ErrorIssue).optional(),
  /** Set with RATE_LIMITED: how long to wait before trying again. */
  retryAfterMs: z.number().int().nonnegative().optional(),
  /** True when the same request may succeed later unchanged (database briefly unavailable). */
  retryable: z.boolean().optional(),
});
export type ApiError = z.infer<typeof ApiError>;

/** The HTTP status each error code maps to; shared so clients and tests agree with the server. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_PAYLOAD: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  CSRF_FAILED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNKNOWN_EVENT: 400,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};
