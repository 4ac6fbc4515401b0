import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Personal data and secrets never go in: we log ids, not names, bodies,
 * emails, phone numbers, passwords or tokens; the redact list is a second line of defence.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { app: 'casebridge' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'password',
        '*.password',
        'token',
        '*.token',
        'body',
        '*.body',
        'email',
        '*.email',
        'phone',
        '*.phone',
        'headers.cookie',
        'headers.authorization',
        'req.headers.cookie',
        'req.headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** First 4 characters and an ellipsis: enough to correlate, useless to replay. */
export function maskToken(token: string | undefined): string | undefined {
  return token ? `${token.slice(0, 4)}…` : undefined;
}
