import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, statusOf, toApiError } from '../errors.js';
import type { Logger } from '../lib/logger.js';

/** JSON errors only; never a stack trace or a database message. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
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
    if (api.code === 'RATE_LIMITED' && api.retryAfterMs) res.setHeader('Retry-After', Math.ceil(api.retryAfterMs / 1000));
    res.status(httpStatus).json({ error: api });
  };
}

export const notFoundApi: RequestHandler = (_req, _res) => {
  throw new AppError('NOT_FOUND', 'No such endpoint');
};
