import { Worker } from 'node:worker_threads';

/** What drizzle's PGlite driver calls on its client; we satisfy it across a worker thread. */
interface QueryOptions {
  rowMode?: 'array' | 'object';
  parsers?: Record<number, unknown>;
}
export interface PgliteResult {
  rows: unknown[];
  fields: { name: string; dataTypeID: number }[];
  affectedRows: number;
}
interface Pending {
  resolve: (r: PgliteResult) => void;
  reject: (e: Error) => void;
}

/** An error from the database with the SQLSTATE `code`, like node-postgres's DatabaseError. */
export class DatabaseError extends Error {
  code?: string;
  constraint?: string;
  detail?: string;
  constructor(e: { message: string; code?: string; constraint?: string; detail?: string }) {
    super(e.message);
    this.name = 'DatabaseError';
    this.code = e.code;
    this.constraint = e.constraint;
    this.detail = e.detail;
  }
}

/** A FIFO lock: PGlite has one connection, so a transaction must own it from BEGIN to COMMIT. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const acquired = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return acquired;
  }
}

/**
 * A PGlite database living in a worker thread, shaped like the PGlite object drizzle expects
 * (`query`, `transaction`). Queries outside a transaction queue behind any open transaction.
 */
export class PgliteWorkerClient {
  private readonly pending = new Map<number, Pending>();
  private readonly mutex = new Mutex();
  private nextId = 1;
  private closed = false;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (msg: { type: string; id?: number; result?: PgliteResult; error?: { message: string } }) => {
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.type === 'result') p.resolve(msg.result!);
      else p.reject(new DatabaseError(msg.error ?? { message: 'unknown database error' }));
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => this.failAll(new Error('PGlite worker exited')));
  }

  /** Starts the worker and waits until PGlite has opened (or created) its data directory. */
  static async start(dataDir: string | null): Promise<PgliteWorkerClient> {
    const worker = new Worker(new URL('./pglite-worker.mjs', import.meta.url), { workerData: { dataDir } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: { type: string; message?: string }) => {
        if (msg.type === 'ready') {
          worker.off('message', onMessage);
          resolve();
        } else if (msg.type === 'fatal') reject(new Error(`PGlite failed to open: ${msg.message}`));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new PgliteWorkerClient(worker);
  }

  private failAll(err: Error) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private send(sql: string, params: unknown[] = [], opts: QueryOptions = {}): Promise<PgliteResult> {
    if (this.closed) return Promise.reject(new Error('database is closed'));
    const id = this.nextId++;
    const rawTypes = Object.keys(opts.parsers ?? {}).map(Number);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'query', id, sql, params, rowMode: opts.rowMode, rawTypes });
    });
  }

  async query(sql: string, params?: unknown[], opts?: QueryOptions): Promise<PgliteResult> {
    const release = await this.mutex.lock();
    try {
      return await this.send(sql, params, opts);
    } finally {
      release();
    }
  }

  async transaction<T>(fn: (tx: { query: PgliteWorkerClient['send'] }) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      await this.send('BEGIN');
      const tx = { query: (sql: string, params?: unknown[], opts?: QueryOptions) => this.send(sql, params, opts) };
      try {
        const result = await fn(tx);
        await this.send('COMMIT');
        return result;
      } catch (err) {
        await this.send('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const release = await this.mutex.lock();
    this.closed = true;
    try {
      await new Promise<void>((resolve) => {
        const onMessage = (msg: { type: string }) => {
          if (msg.type === 'closed') resolve();
        };
        this.worker.on('message', onMessage);
        this.worker.postMessage({ type: 'close' });
      });
      await this.worker.terminate();
    } finally {
      release();
    }
  }
}
