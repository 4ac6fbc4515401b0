import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, statusOf, toApiError } from '../errors.js';
import type { Logger } from '../lib/logger.js';
import type { AuditRepository } from '../modules/audit/audit.repository.js';
import { isDenial, recordDenial } from '../modules/audit/denials.js';
import { auth } from './principal.js';

/** Thrown by the catch-all: an unknown endpoint is not an object someone was refused. */
const NO_SUCH_ENDPOINT = 'No such endpoint';

/** JSON errors only; never a stack trace or a database message. Refusals of a signed-in caller are audited. */
export function errorHandler(logger: Logger, audit?: AuditRepository): ErrorRequestHandler {
  return async (err, req, res, _next) => {
    let error = err;
    // body-parser's own errors: malformed JSON, oversized body, wrong charset.
    const status = (err as { status?: number; type?: string }).status;
    const type = (err as { type?: string }).type;
    if (!(err instanceof AppError) && status && status < 500) {
      if (type === 'entity.too.large') error = new AppError('PAYLOAD_TOO_LARGE', 'Request body is too large');
      else if (type === 'entity.parse.failed') error = new AppError('INVALID_PAYLOAD', 'Request body is not valid JSON');
      else error = new AppError('INVALID_PAYLOAD', 'Request could not be read');
    }
    const api = toApiError(error);
    const httpStatus = statusOf(error);
    if (httpStatus >= 500) logger.error({ err, reqId: res.locals.reqId, path: req.path }, 'request failed');
    const principal = auth(res)?.principal;
    if (audit && principal && error instanceof AppError && isDenial(error) && error.message !== NO_SUCH_ENDPOINT) {
      // The path holds ids only (the query string, which may carry search text, is left out).
      await recordDenial(audit, logger, principal, error, { via: 'http', what: `${req.method} ${req.originalUrl.split('?')[0]}`.slice(0, 300) });
    }
    if (api.code === 'RATE_LIMITED' && api.retryAfterMs) res.setHeader('Retry-After', Math.ceil(api.retryAfterMs / 1000));
    res.status(httpStatus).json({ error: api });
  };
}

export const notFoundApi: RequestHandler = (_req, _res) => {
  throw new AppError('NOT_FOUND', NO_SUCH_ENDPOINT);
};
