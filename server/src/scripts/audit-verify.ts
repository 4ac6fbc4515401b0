import { resolve } from 'node:path';
import { openDatabase } from '../db/client.js';
import { verifyAuditChain } from '../modules/audit/audit-chain.js';

// `npm run audit:verify`: recomputes every audit chain and reports the first tampered row of each.
// Against DATABASE_URL (PostgreSQL), else the PGlite directory DATA_DIR (default ./data; stop the server first:
// one process at a time may open it). Exit code 0 = intact, 1 = tampering found, 2 = could not check.
// A command-line tool is its own composition root, so it reads these two variables itself.
const json = process.argv.includes('--json');
const databaseUrl = process.env.DATABASE_URL || undefined;
const dataDir = resolve(process.env.DATA_DIR || './data');

try {
  const database = await openDatabase({ databaseUrl, dataDir: databaseUrl ? null : dataDir });
  try {
    const report = await verifyAuditChain(database.db);
    if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      const where = databaseUrl ? 'PostgreSQL' : `PGlite ${dataDir}`;
      process.stdout.write(`audit log (${where}): ${report.rows} rows in ${report.chains} chain(s)\n`);
      for (const h of report.heads) process.stdout.write(`  head ${h.chain} seq ${h.seq} ${h.hash}\n`);
      if (report.ok) process.stdout.write('OK: every chain is intact\n');
      else for (const p of report.problems) process.stdout.write(`TAMPERED: ${p.message}\n`);
    }
    process.exitCode = report.ok ? 0 : 1;
  } finally {
    await database.close();
  }
} catch (err) {
  process.stderr.write(`audit:verify could not check the audit log: ${(err as Error).message}\n`);
  process.exitCode = 2;
}
