import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../lib/logger.js';

/** One line per request with a request id; the path only, never the query string or body (PII). */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const reqId = randomUUID();
    res.locals.reqId = reqId;
    res.setHeader('X-Request-Id', reqId);
    const start = process.hrtime.bigint();
    const path = req.originalUrl.split('?')[0] ?? '';
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const level = res.statusCode >= 500 ? 'error' : 'info';
      if (path === '/api/health' && res.statusCode < 400) return;
      logger[level]({ reqId, method: req.method, path, status: res.statusCode, ms: Math.round(ms) }, 'http');
    });
    next();
  };
}
