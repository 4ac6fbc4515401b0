import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A deliberately bare WebSocket client over a TCP socket, for hostile-client tests: it writes any frame a real
 * client never would (reserved bits, endless fragments, frames past the size limit, invalid UTF-8, non-JSON
 * engine.io packets) and reports exactly how the server answered (text frames, close code, dropped TCP).
 */
export class RawWs {
  /** Every connection still open, so a test can drop them all (the server otherwise waits for their close). */
  static readonly all = new Set<RawWs>();
  static destroyAll(): void {
    for (const ws of RawWs.all) ws.destroy();
  }
  readonly texts: string[] = [];
  closeCode: number | undefined;
  /** Resolves when the TCP connection is gone (closed by either side). */
  readonly ended: Promise<void>;
  /** Resolves when the server sent a close frame. */
  readonly closeFrame: Promise<void>;
  private gotCloseFrame!: () => void;
  private buf = Buffer.alloc(0);
  private waiters: { pred: (t: string) => boolean; resolve: (t: string) => void }[] = [];

  private constructor(private readonly sock: Socket, rest: Buffer) {
    RawWs.all.add(this);
    this.ended = new Promise((resolve) => sock.once('close', () => (RawWs.all.delete(this), resolve())));
    this.closeFrame = new Promise((resolve) => (this.gotCloseFrame = resolve));
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => undefined);
    if (rest.length) this.onData(rest);
  }

  /** Upgrades `path` on 127.0.0.1:port; rejects with the HTTP status line when the server refuses. */
  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.off('data', onData);
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) {
          sock.destroy();
          reject(new Error(status));
          return;
        }
        resolve(new RawWs(sock, head.subarray(end + 4)));
      };
      sock.on('data', onData);
      sock.once('error', reject);
      sock.once('close', () => reject(new Error('closed during upgrade')));
      const lines = [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  }

  get open(): boolean {
    return !this.sock.destroyed && this.closeCode === undefined;
  }

  /** One frame, masked as a client must (unless told otherwise). */
  frame(opcode: number, payload: Buffer | string, o: { fin?: boolean; rsv?: number; mask?: boolean } = {}): void {
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const mask = o.mask ?? true;
    const len = data.length;
    const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
    const m = mask ? 0x80 : 0;
    if (len < 126) head.push(m | len);
    else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
    else {
      head.push(m | 127, 0, 0, 0, 0);
      head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
    }
    let body = data;
    if (mask) {
      const key = randomBytes(4);
      body = Buffer.alloc(len);
      for (let i = 0; i < len; i++) body[i] = data[i]! ^ key[i % 4]!;
      head.push(...key);
    }
    if (!this.sock.destroyed) this.sock.write(Buffer.concat([Buffer.from(head), body]));
  }

  text(s: string): void {
    this.frame(0x1, s);
  }

  /** Raw bytes straight onto the TCP stream. */
  raw(b: Buffer): void {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  /** The next text frame matching `pred` (already received ones count), or rejects after `ms`. */
  next(pred: (t: string) => boolean = () => true, ms = 3000): Promise<string> {
    const seen = this.texts.find(pred);
    if (seen) {
      this.texts.splice(this.texts.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (t: string) => (clearTimeout(timer), resolve(t)) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no matching frame within ${ms} ms (got ${JSON.stringify(this.texts.slice(-3))}, closeCode ${this.closeCode})`));
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Resolves when the server closed the connection (close frame or TCP), or rejects after `ms`. */
  async closedWithin(ms = 3000): Promise<number | undefined> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.ended,
      this.closeFrame,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
    return this.closeCode;
  }

  destroy(): void {
    this.sock.destroy();
  }

  /** Sends a TCP RST instead of a clean close. */
  reset(): void {
    this.sock.resetAndDestroy();
  }

  private onData(d: Buffer) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0]! & 0x0f;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (opcode === 0x1) {
        const t = payload.toString();
        // engine.io heartbeat: answer the server's ping so long tests are not dropped for silence.
        if (t === '2') {
          this.text('3');
          continue;
        }
        const w = this.waiters.find((x) => x.pred(t));
        if (w) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(t);
        } else this.texts.push(t);
      } else if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.gotCloseFrame();
      }
    }
  }
}

export const ENGINE_PATH = '/socket.io/?EIO=4&transport=websocket';

/**
 * A Socket.IO client made of raw frames: engine.io open, then the namespace connect with `auth`.
 * Resolves once the server accepted the namespace connect; rejects with its error message otherwise.
 */
export async function rawSocketIo(port: number, auth: Record<string, unknown>, headers: Record<string, string> = {}, path = ENGINE_PATH): Promise<RawWs> {
  const ws = await RawWs.open(port, path, headers);
  await ws.next((t) => t.startsWith('0{'));
  ws.text(`40${JSON.stringify(auth)}`);
  const answer = await ws.next((t) => t.startsWith('40') || t.startsWith('44'));
  if (answer.startsWith('44')) {
    ws.destroy();
    throw new Error((JSON.parse(answer.slice(2)) as { message: string }).message);
  }
  return ws;
}

/** Sends an event with ack id `id` and resolves with the ack's first argument. */
export async function rawEmitWithAck(ws: RawWs, id: number, packet: string, ms = 3000): Promise<unknown> {
  ws.text(`42${id}${packet}`);
  const ack = await ws.next((t) => t.startsWith(`43${id}[`), ms);
  return (JSON.parse(ack.slice(`43${id}`.length)) as unknown[])[0];
}
