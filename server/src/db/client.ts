import { fileURLToPath } from 'node:url';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql, type SQL } from 'drizzle-orm';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import * as schema from './schema.js';
export { isDatabaseUnavailable } from './unavailable.js';
import { lockDataDir } from './data-dir-lock.js';
import { PgliteWorkerClient } from './pglite-client.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** What a repository receives: the database or an open transaction. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DatabaseKind = 'pglite' | 'postgres';

export interface Database {
  db: Db;
  kind: DatabaseKind;
  /** True when a trivial query answers. */
  ping(): Promise<boolean>;
  /**
   * Runs `fn` only if no other node is running work under the same key (a PostgreSQL advisory lock held for
   * the run; released by the server if this node dies). Returns undefined when another node has it. PGlite
   * serves one node, so there it simply runs.
   */
  exclusive<T>(key: number, fn: () => Promise<T>): Promise<T | undefined>;
  close(): Promise<void>;
}

/** Same path from server/src/db and server/dist/db. */
export const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

export interface OpenOptions {
  /** postgres://… selects PostgreSQL; otherwise PGlite. */
  databaseUrl?: string;
  /** PGlite directory; null keeps it in memory (tests). */
  dataDir: string | null;
  onPoolError?: (err: Error) => void;
}

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.onPoolError) : openPglite(opts.dataDir);
}

async function openPostgres(url: string, onPoolError?: (err: Error) => void): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  // An idle client that loses its server (PostgreSQL restart) emits 'error'; without a listener the process dies.
  pool.on('error', (err) => onPoolError?.(err));
  const db = drizzlePg({ client: pool, schema });
  // Several nodes may start at once: one migrates, the others wait on the advisory lock.
  const lockClient = await pool.connect();
  try {
    await lockClient.query('select pg_advisory_lock(724311)');
    await migratePg(db, { migrationsFolder });
  } finally {
    await lockClient.query('select pg_advisory_unlock(724311)').catch(() => undefined);
    lockClient.release();
  }
  return {
    db,
    kind: 'postgres',
    ping: () => ping(db),
    exclusive: async (key, fn) => {
      const client = await pool.connect();
      try {
        const { rows } = await client.query<{ got: boolean }>('select pg_try_advisory_lock($1) as got', [key]);
        if (!rows[0]?.got) return undefined;
        try {
          return await fn();
        } finally {
          await client.query('select pg_advisory_unlock($1)', [key]).catch(() => undefined);
        }
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPglite(dataDir: string | null): Promise<Database> {
  const unlock = dataDir ? lockDataDir(dataDir) : () => undefined;
  let client: PgliteWorkerClient;
  try {
    client = await PgliteWorkerClient.start(dataDir);
  } catch (err) {
    unlock();
    throw err;
  }
  // The worker client implements the part of PGlite's API drizzle uses (query, transaction).
  const db = drizzlePglite({ client: client as unknown as PGlite, schema });
  try {
    await migratePglite(db, { migrationsFolder });
  } catch (err) {
    await client.close();
    unlock();
    throw err;
  }
  return {
    db,
    kind: 'pglite',
    ping: () => ping(db),
    exclusive: (_key, fn) => fn(),
    close: async () => {
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

async function ping(db: Db): Promise<boolean> {
  try {
    await db.execute(sql`select 1`);
    return true;
  } catch {
    return false;
  }
}

/** The SQLSTATE of a database error, from either driver (drizzle may wrap it in `cause`). */
export function pgErrorCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** The constraint a unique violation hit, from either driver. */
export function pgConstraint(err: unknown): string | undefined {
  for (let e = err as { constraint?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as typeof e, i++) {
    if (typeof e.constraint === 'string') return e.constraint;
  }
  return undefined;
}

/** The rows of a raw `db.execute(sql…)`: node-postgres and PGlite both answer `{ rows }`. */
export function rowsOf<T>(result: unknown): T[] {
  const r = result as { rows?: T[] } | T[];
  return Array.isArray(r) ? r : (r.rows ?? []);
}

/** A list of uuids for `in (…)` in raw SQL, each a bound parameter. */
export function uuidList(ids: string[]): SQL {
  return sql.join(
    ids.map((id) => sql`${id}::uuid`),
    sql`, `,
  );
}
