import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * A small stand-in for Twilio's REST API on loopback, so the suite runs offline with the real `twilio` client
 * (pointed here through TWILIO_API_BASE_URL). It checks Basic auth like Twilio, records every request, answers
 * with Twilio-shaped JSON, can be told to fail the next calls with Twilio's error bodies, and serves MMS media.
 */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The form fields of a POST (Twilio's API is form-encoded). */
  form: Record<string, string>;
  authorized: boolean;
  /** The HTTP status the fake answered with (0: it dropped the connection). */
  status: number;
}

export interface TwilioFailure {
  status: number;
  code: number;
  message: string;
}

interface Media {
  bytes: Buffer;
  contentType: string;
  /** Serve it through a redirect to a second path, as Twilio does to its storage. */
  redirect?: boolean;
}

export class FakeTwilio {
  readonly requests: RecordedRequest[] = [];
  private readonly accounts = new Map<string, string>();
  private readonly failures: (TwilioFailure | 'drop')[] = [];
  private readonly media = new Map<string, Media>();
  private server!: Server;
  url = '';

  static async start(): Promise<FakeTwilio> {
    const fake = new FakeTwilio();
    fake.server = createServer((req, res) => void fake.handle(req, res));
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', () => r()));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** An account the fake accepts (its SID and auth token). */
  addAccount(accountSid: string, authToken: string): this {
    this.accounts.set(accountSid, authToken);
    return this;
  }

  /** The next API call (messages or calls) answers with this Twilio error, or drops the connection. */
  failNext(failure: TwilioFailure | 'drop', times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(failure);
  }

  /** Media an inbound MMS points at; returns the URL Twilio would put in MediaUrl0. */
  addMedia(accountSid: string, messageSid: string, media: Media): string {
    const mediaSid = `ME${randomBytes(16).toString('hex')}`;
    const path = `/2010-04-01/Accounts/${accountSid}/Messages/${messageSid}/Media/${mediaSid}`;
    this.media.set(path, media);
    return `https://api.twilio.com${path}`;
  }

  /** The messages Twilio accepted for sending, in order (refused and dropped attempts are not counted). */
  sentMessages(): Record<string, string>[] {
    return this.requests.filter((r) => r.method === 'POST' && /\/Messages\.json$/.test(r.path) && r.status === 201).map((r) => r.form);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', this.url);
    const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    const account = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})\//.exec(url.pathname)?.[1];
    const authorized = Boolean(account) && this.authorized(req, account!);
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, form, authorized, status: 0 };
    this.requests.push(recorded);
    res.on('finish', () => (recorded.status = res.statusCode));

    if (url.pathname.startsWith('/storage/')) return this.serveStored(url.pathname, res);
    if (!authorized) return json(res, 401, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });

    if (req.method === 'GET' && this.media.has(url.pathname)) {
      const m = this.media.get(url.pathname)!;
      if (m.redirect) {
        res.writeHead(307, { Location: `${this.url}/storage${url.pathname}` }).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': m.contentType, 'Content-Length': m.bytes.length }).end(m.bytes);
      return;
    }

    if (req.method === 'GET' && this.serveRecording(url.pathname, res)) return;

    const failure = req.method === 'POST' ? this.failures.shift() : undefined;
    if (failure === 'drop') {
      req.socket.destroy();
      return;
    }
    if (failure) {
      return json(res, failure.status, { code: failure.code, message: failure.message, more_info: `https://www.twilio.com/docs/errors/${failure.code}`, status: failure.status });
    }

    if (req.method === 'POST' && url.pathname === `/2010-04-01/Accounts/${account}/Messages.json`) {
      if (!form.To || !form.From || (!form.Body && !form.MediaUrl)) {
        return json(res, 400, { code: 21604, message: "A 'To' phone number is required.", status: 400 });
      }
      const now = new Date().toUTCString();
      return json(res, 201, {
        sid: `SM${randomBytes(16).toString('hex')}`,
        account_sid: account,
        to: form.To,
        from: form.From,
        body: form.Body ?? '',
        status: 'queued',
        num_segments: '1',
        direction: 'outbound-api',
        date_created: now,
        date_updated: now,
        error_code: null,
        error_message: null,
        uri: `/2010-04-01/Accounts/${account}/Messages.json`,
      });
    }
    const call = new RegExp(`^/2010-04-01/Accounts/${account}/Calls(?:/(CA[0-9a-f]{32}))?\\.json$`).exec(url.pathname);
    if (req.method === 'POST' && call) {
      const now = new Date().toUTCString();
      return json(res, call[1] ? 200 : 201, {
        sid: call[1] ?? `CA${randomBytes(16).toString('hex')}`,
        account_sid: account,
        to: form.To ?? null,
        from: form.From ?? null,
        status: call[1] ? (form.Status ?? 'in-progress') : 'queued',
        date_created: now,
        date_updated: now,
        uri: url.pathname,
      });
    }
    return json(res, 404, { code: 20404, message: `The requested resource ${url.pathname} was not found`, status: 404 });
  }

  // ---- voice -------------------------------------------------------------------------------------

  private readonly recordings = new Map<string, Buffer>();

  /** A call recording Twilio holds; returns its SID and the RecordingUrl a webhook names (no extension). */
  addRecording(accountSid: string, bytes: Buffer = Buffer.from('ID3fake-mp3-audio')): { sid: string; url: string } {
    const sid = `RE${randomBytes(16).toString('hex')}`;
    const path = `/2010-04-01/Accounts/${accountSid}/Recordings/${sid}`;
    this.recordings.set(path, bytes);
    return { sid, url: `https://api.twilio.com${path}` };
  }

  /** The live-call updates the product made (calls(sid).update), in order: the CallSid and the form sent. */
  callUpdates(): { callSid: string; form: Record<string, string> }[] {
    return this.requests.flatMap((r) => {
      const m = /\/Calls\/(CA[0-9a-f]{32})\.json$/.exec(r.path);
      return r.method === 'POST' && r.authorized && m ? [{ callSid: m[1]!, form: r.form }] : [];
    });
  }

  /** GET …/Recordings/RE….mp3 (after auth): the recording's bytes as audio/mpeg. */
  private serveRecording(path: string, res: ServerResponse): boolean {
    const m = /^(.*\/Recordings\/RE[0-9a-f]{32})\.mp3$/.exec(path);
    const bytes = m ? this.recordings.get(m[1]!) : undefined;
    if (!bytes) return false;
    res.writeHead(200, { 'Content-Type': 'audio/mpeg', 'Content-Length': bytes.length }).end(bytes);
    return true;
  }

  private serveStored(path: string, res: ServerResponse): void {
    const m = this.media.get(path.slice('/storage'.length));
    if (!m) return json(res, 404, { code: 20404, message: 'not found', status: 404 });
    res.writeHead(200, { 'Content-Type': m.contentType, 'Content-Length': m.bytes.length }).end(m.bytes);
  }

  private authorized(req: IncomingMessage, account: string): boolean {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Basic ')) return false;
    const [sid, token] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
    return sid === account && this.accounts.get(account) === token;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}
