import { isDatabaseUnavailable } from './db/unavailable.js';
import { HTTP_STATUS, type ApiError, type ErrorCode, type ErrorIssue } from '@casebridge/shared';
import type { z } from 'zod';

/** The one error type domain code throws; anything else becomes INTERNAL with a generic message. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { issues?: ErrorIssue[]; retryAfterMs?: number; retryable?: boolean } = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

export function fromZod(error: z.ZodError): AppError {
  const issues = error.issues.map((i) => ({
    path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
    message: i.message,
  }));
  const first = issues[0];
  const where = first && first.path.length ? ` (${first.path.join('.')}: ${first.message})` : '';
  return new AppError('INVALID_PAYLOAD', `invalid payload${where}`, { issues });
}

/** Never leaks internals: unknown errors become a generic INTERNAL; a database outage says it may be retried. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof AppError) {
    return { code: err.code, message: err.message, ...err.extra };
  }
  if (isDatabaseUnavailable(err)) {
    return { code: 'UNAVAILABLE', message: 'The service is briefly unavailable. Please try again in a moment.', retryable: true };
  }
  return { code: 'INTERNAL', message: 'Something went wrong on our side. Please try again.' };
}

/** The HTTP status for any error: AppError's own, 503 for a database outage, else 500. */
export function statusOf(err: unknown): number {
  if (err instanceof AppError) return err.status;
  return isDatabaseUnavailable(err) ? 503 : 500;
}
