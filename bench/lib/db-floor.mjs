// B3: the bare database floor, as its own process. The product's own driver set-up (server/dist/db/client.js:
// pg Pool of 10, or PGlite in its worker thread), a messages-like table, and the same load model as the relays:
// a message is "acknowledged and delivered" when its insert has committed.
//   per-row: one INSERT (autocommit) per message.
//   batched: group commit – one multi-row INSERT … SELECT FROM unnest(…) in flight, carrying everything queued
//            since the previous flush (PERFORMANCE.md §8.1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { serveParent, root } from './infra.mjs';
import { runStandardPhases } from './load.mjs';

const require = createRequire(join(root, 'server/package.json'));
const { sql } = require('drizzle-orm');
const { openDatabase } = await import(join(root, 'server/dist/db/client.js'));

let database;
let dataDir;
const BODY = 'Hello, I would like to ask about the status of my permit application for the house on Elm St. Thanks';

async function open({ databaseUrl }) {
  dataDir = databaseUrl ? null : mkdtempSync(join(tmpdir(), 'cb-bench-b3-'));
  database = await openDatabase({ databaseUrl, dataDir });
  await database.db.execute(sql`create table if not exists bench_messages (
    id uuid primary key default gen_random_uuid(),
    conversation_id uuid not null,
    client_message_id uuid not null,
    seq integer not null,
    body text not null,
    created_at timestamptz not null default now(),
    unique (conversation_id, client_message_id))`);
  await database.db.execute(sql`truncate bench_messages`);
  return { kind: database.kind };
}

function transport(mode, pairs) {
  const convs = Array.from({ length: pairs }, () => crypto.randomUUID());
  const seqs = new Array(pairs).fill(0);
  const t = { pairs, serverPids: [process.pid], onDeliver: () => {}, acked: 0 };
  const db = database.db;
  if (mode === 'per-row') {
    t.send = (pair, id, onAck) => {
      const seq = ++seqs[pair];
      db.execute(sql`insert into bench_messages (conversation_id, client_message_id, seq, body) values (${convs[pair]}, ${id}, ${seq}, ${BODY})`).then(
        () => {
          t.acked++;
          t.onDeliver(id);
          onAck(true);
        },
        (err) => onAck(false, err.code ?? 'DB'),
      );
    };
    return t;
  }
  let queue = [];
  let flushing = false;
  const flush = async () => {
    if (flushing || !queue.length) return;
    flushing = true;
    const batch = queue;
    queue = [];
    try {
      const cs = `{${batch.map((b) => b.conv).join(',')}}`;
      const ids = `{${batch.map((b) => b.id).join(',')}}`;
      const sq = `{${batch.map((b) => b.seq).join(',')}}`;
      const bodies = `{${batch.map((b) => `"${b.body.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
      await db.execute(sql`insert into bench_messages (conversation_id, client_message_id, seq, body)
        select * from unnest(${cs}::uuid[], ${ids}::uuid[], ${sq}::int[], ${bodies}::text[])`);
      for (const b of batch) {
        t.acked++;
        t.onDeliver(b.id);
        b.onAck(true);
      }
    } catch (err) {
      for (const b of batch) b.onAck(false, err.code ?? 'DB');
    } finally {
      flushing = false;
      if (queue.length) void flush();
    }
  };
  t.send = (pair, id, onAck) => {
    queue.push({ conv: convs[pair], id, seq: ++seqs[pair], body: BODY, onAck });
    void flush();
  };
  return t;
}

serveParent({
  open,
  async run({ mode, cfg, pairs, only }) {
    const t = transport(mode, pairs);
    const phases = await runStandardPhases(t, cfg, { only });
    const res = await database.db.execute(sql`select count(*)::int as n from bench_messages`);
    const rows = (res.rows ?? res)[0].n;
    await database.db.execute(sql`truncate bench_messages`);
    return { phases, rows, acked: t.acked };
  },
  async close() {
    await database?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    return true;
  },
});
process.on('SIGTERM', async () => {
  await database?.close().catch(() => undefined);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
});
