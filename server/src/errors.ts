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

/** Never leaks internals: unknown errors become a generic INTERNAL. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof AppError) {
    return { code: err.code, message: err.message, ...err.extra };
  }
  return { code: 'INTERNAL', message: 'Something went wrong on our side. Please try again.' };
}
