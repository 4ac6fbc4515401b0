// @ts-check
// Runs PGlite (PostgreSQL compiled to WebAssembly) on its own thread. PGlite executes queries
// synchronously inside WASM; on the main thread a slow query would stall every socket and request.
// The main thread (pglite-client.ts) serialises access, so this side just executes in arrival order.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

if (!parentPort) throw new Error('pglite-worker must run in a worker thread');
const port = parentPort;

/** @type {{ dataDir: string | null }} */
const { dataDir } = workerData;
const identity = (/** @type {string} */ v) => v;

let db;
try {
  db = await PGlite.create(dataDir ?? undefined);
  port.postMessage({ type: 'ready' });
} catch (err) {
  port.postMessage({ type: 'fatal', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

/** Copies the fields node-postgres also exposes, so callers check one error shape for both drivers. */
function serialiseError(err) {
  const e = /** @type {Record<string, unknown>} */ (err ?? {});
  return {
    message: typeof e.message === 'string' ? e.message : String(err),
    code: e.code,
    detail: e.detail,
    constraint: e.constraint,
    table: e.table,
    column: e.column,
    severity: e.severity,
  };
}

port.on('message', async (msg) => {
  if (msg.type === 'close') {
    try {
      await db.close();
    } finally {
      port.postMessage({ type: 'closed' });
    }
    return;
  }
  if (msg.type !== 'query') return;
  try {
    // The caller names the type OIDs it wants as raw text (drizzle keeps timestamps as strings);
    // functions cannot cross the thread boundary, so the parsers are rebuilt here.
    const parsers = Object.fromEntries((msg.rawTypes ?? []).map((oid) => [oid, identity]));
    const result = await db.query(msg.sql, msg.params ?? [], { rowMode: msg.rowMode ?? 'object', parsers });
    port.postMessage({
      type: 'result',
      id: msg.id,
      result: { rows: result.rows, fields: result.fields, affectedRows: result.affectedRows ?? 0 },
    });
  } catch (err) {
    port.postMessage({ type: 'error', id: msg.id, error: serialiseError(err) });
  }
});
