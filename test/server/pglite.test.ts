import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../server/src/db/client.js';
import { lockDataDir } from '../../server/src/db/data-dir-lock.js';

describe('PGlite, the embedded default', () => {
  let dir: string;
  let database: Database;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cb-pglite-'));
    database = await openDatabase({ dataDir: join(dir, 'data') });
  }, 60_000);
  afterAll(async () => {
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the event loop turning while a heavy query runs (PGlite lives in a worker thread)', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    await database.db.execute(sql`select count(*) from generate_series(1, 3000000) g where g % 7 = 0`);
    const took = Date.now() - started;
    clearInterval(timer);
    // On the main thread the query would block every tick; off it, the 10 ms timer keeps firing.
    expect(took).toBeGreaterThan(100);
    expect(ticks).toBeGreaterThan(Math.floor(took / 10 / 3));
  });

  it('a transaction owns the single connection: other queries wait, nothing interleaves', async () => {
    const db = database.db;
    await db.execute(sql`create table if not exists t_iso (n int)`);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await t.execute(sql`insert into t_iso values (1)`);
      await gate;
      throw new Error('roll back');
    });
    const outside = db.execute(sql`select count(*)::int as n from t_iso`);
    release();
    await expect(tx).rejects.toThrow('roll back');
    const rows = (await outside) as unknown as { rows: { n: number }[] };
    expect(rows.rows[0]!.n).toBe(0);
  });

  it('refuses a second process on the same data directory with a clear error', async () => {
    const script = join(dir, 'second.mjs');
    const lockUrl = new URL('../../server/src/db/data-dir-lock.ts', import.meta.url).href;
    writeFileSync(
      script,
      `import { lockDataDir } from ${JSON.stringify(lockUrl)};\n` +
        `try { lockDataDir(${JSON.stringify(join(dir, 'data'))}); console.log('LOCKED'); }\n` +
        `catch (e) { console.log('REFUSED: ' + e.message); }\n`,
    );
    const out = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.on('close', () => resolve(text));
    });
    expect(out).toMatch(/REFUSED: The data directory .* is in use by another CaseBridge process \(pid \d+\)/);
  });

  it('takes over a lock left by a process that died', () => {
    const d = join(dir, 'stale');
    const release = lockDataDir(d);
    release();
    writeFileSync(join(d, 'casebridge.lock'), '999999'); // no such process
    const again = lockDataDir(d);
    again();
  });

  it('keeps committed data across a reopen', async () => {
    const d = join(dir, 'reopen');
    const a = await openDatabase({ dataDir: d });
    await a.db.execute(sql`create table kept (v text)`);
    await a.db.execute(sql`insert into kept values ('still here')`);
    await a.close();
    const b = await openDatabase({ dataDir: d });
    const rows = (await b.db.execute(sql`select v from kept`)) as unknown as { rows: { v: string }[] };
    expect(rows.rows).toEqual([{ v: 'still here' }]);
    await b.close();
  }, 60_000);
});
