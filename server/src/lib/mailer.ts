import nodemailer from 'nodemailer';
import { AppError } from '../errors.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  readonly enabled: boolean;
  send(mail: Mail): Promise<void>;
  close(): void;
}

/** Outgoing email over the SMTP server in SMTP_URL. Without one, `enabled` is false and sending refuses. */
export function createMailer(opts: { smtpUrl?: string; from: string }): Mailer {
  if (!opts.smtpUrl) {
    return {
      enabled: false,
      async send() {
        throw new AppError('UNAVAILABLE', 'Email is not set up here; download the transcript instead', { retryable: false });
      },
      close() {},
    };
  }
  // Short timeouts: a constituent is waiting on the answer, and a stuck mail server must not hold requests.
  const url = new URL(opts.smtpUrl);
  const secure = url.protocol === 'smtps:';
  const transport = nodemailer.createTransport({
    host: url.hostname,
    port: Number(url.port) || (secure ? 465 : 587),
    secure,
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    enabled: true,
    async send(mail) {
      try {
        await transport.sendMail({ from: opts.from, ...mail });
      } catch {
        throw new AppError('UNAVAILABLE', 'The email could not be sent right now. Please try again later.', { retryable: true });
      }
    },
    close: () => transport.close(),
  };
}
