import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import type { AuditPage } from '@casebridge/shared';
import { openDatabase, pgErrorCode, rowsOf } from '../../server/src/db/client.js';
import { AuditRepository } from '../../server/src/modules/audit/audit.repository.js';
import { verifyAuditChain } from '../../server/src/modules/audit/audit-chain.js';
import { backends, createTestDatabase, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';

const root = join(import.meta.dirname, '../..');
/** `npm run audit:verify`, run from the TypeScript source (the same file the build compiles). */
function auditVerify(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'server/src/scripts/audit-verify.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

// Issue #11: every security-relevant action is audited with actor, role, time from the database, source IP and
// outcome; the log is append-only in the database and hash-chained, and admins search and export it.
describe.each(backends())('audit trail on %s', (backend) => {
  let h: Harness;
  let second: Harness | undefined;
  let dropDb: (() => Promise<void>) | undefined;
  let dbUrl: string | undefined;
  let admin: StaffSession;
  let agent: StaffSession;
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await h.server.database.db.execute(query));

  beforeAll(async () => {
    if (backend === 'postgres') {
      const db = await createTestDatabase();
      dbUrl = db.url;
      dropDb = db.drop;
    }
    h = await startTestServer(backend, { databaseUrl: dbUrl });
    [admin, agent] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov')]);
  }, 60_000);
  afterAll(async () => {
    await second?.close();
    await h?.close();
    await dropDb?.();
  }, 30_000);

  it('records sign-ins, case and conversation reads, denials and exports with actor, role, IP, outcome and DB time', async () => {
    const before = (await q<{ now: string }>(sql`select now()::text as now`))[0]!.now;
    await h.http.post('/api/auth/login').set('User-Agent', 'audit-test-agent').send({ email: 'agent@demo.gov', password: 'wrong-password-1' }).expect(401);
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'hello', clientMessageId: uuid() });
    const as = staffApi(h, agent);
    const summary = (await as.get(`/api/conversations/${conv.id}`).expect(200)).body as { caseId: string };
    await as.get(`/api/cases/${summary.caseId}`).expect(200);
    // Permission denied: an agent asks for the audit log, and for a case that does not exist (or is hidden).
    await as.get('/api/admin/audit').expect(403);
    await as.get(`/api/cases/${uuid()}`).expect(404);
    // An unknown endpoint is not an object denial: no row.
    await as.get('/api/no-such-thing').expect(404);
    await staffApi(h, admin).get('/api/reports?from=2026-01-01&to=2026-01-31&format=csv').expect(200);
    await as.get(`/api/conversations/${conv.id}/transcript`).expect(200);

    const rows = await q<{ action: string; outcome: string; actor_role: string | null; source_ip: string | null; object_id: string | null; created_at: string; user_agent_hash: string | null; hash: string | null }>(
      sql`select action, outcome, actor_role, source_ip, object_id, created_at::text, user_agent_hash, hash from audit_log where created_at >= ${before}::timestamptz order by seq`,
    );
    const find = (action: string, outcome = 'success') => rows.find((r) => r.action === action && r.outcome === outcome);
    expect(find('auth.login', 'failure')).toMatchObject({ actor_role: 'anonymous' });
    expect(find('auth.login', 'failure')!.user_agent_hash).toMatch(/^[0-9a-f]{16}$/);
    expect(find('conversation.read')).toMatchObject({ actor_role: 'agent', object_id: conv.id });
    expect(find('case.read')).toMatchObject({ actor_role: 'agent', object_id: summary.caseId });
    const denials = rows.filter((r) => r.action === 'access.denied');
    expect(denials.map((d) => d.object_id)).toEqual(['GET /api/admin/audit', expect.stringMatching(/^GET \/api\/cases\/[0-9a-f-]{36}$/)]);
    expect(denials.every((d) => d.outcome === 'denied' && d.actor_role === 'agent')).toBe(true);
    expect(find('report.export')).toMatchObject({ actor_role: 'admin' });
    expect(find('conversation.transcript_export')).toBeDefined();
    // Every row: the source IP of the request, a hash, a time from the database.
    for (const r of rows) {
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(new Date(r.created_at).getTime()).toBeGreaterThanOrEqual(new Date(before).getTime());
    }
    expect(rows.filter((r) => r.action !== 'conversation.assign').every((r) => r.source_ip && /127\.0\.0\.1|::1/.test(r.source_ip))).toBe(true);
  });

  it('socket refusals are audited too', async () => {
    const socket = await h.staffSocket(agent);
    const id = uuid();
    const ack = await socket.emitWithAck('conversation:claim', { conversationId: id });
    expect(ack.ok).toBe(false);
    const rows = await q<{ object_id: string; outcome: string; source_ip: string | null }>(sql`select object_id, outcome, source_ip from audit_log where action = 'access.denied' and object_type = 'event' order by seq`);
    expect(rows.at(-1)).toMatchObject({ object_id: 'conversation:claim', outcome: 'denied' });
    expect(rows.at(-1)!.source_ip).toBeTruthy();
    socket.close();
  });

  it('admins search (actor, action, object, outcome, dates) with paging and export CSV; the export is audited', async () => {
    const as = staffApi(h, admin);
    const all = (await as.get('/api/admin/audit?pageSize=5').expect(200)).body as AuditPage;
    expect(all.entries).toHaveLength(5);
    expect(all.total).toBeGreaterThan(5);
    const page2 = (await as.get('/api/admin/audit?pageSize=5&page=2').expect(200)).body as AuditPage;
    expect(page2.entries.map((e) => e.id)).not.toContain(all.entries[0]!.id);
    const denied = (await as.get('/api/admin/audit?outcome=denied&actor=agent%40demo.gov').expect(200)).body as AuditPage;
    expect(denied.total).toBeGreaterThanOrEqual(3);
    expect(denied.entries.every((e) => e.outcome === 'denied' && e.actorName && e.actorRole === 'agent')).toBe(true);
    const reads = (await as.get('/api/admin/audit?action=case.&objectType=case').expect(200)).body as AuditPage;
    expect(reads.entries.length).toBeGreaterThan(0);
    expect(reads.entries.every((e) => e.action.startsWith('case.') && e.objectType === 'case')).toBe(true);
    const one = reads.entries[0]!;
    expect(((await as.get(`/api/admin/audit?objectId=${one.objectId}`)).body as AuditPage).entries.every((e) => e.objectId === one.objectId)).toBe(true);
    const future = (await as.get('/api/admin/audit?from=2099-01-01').expect(200)).body as AuditPage;
    expect(future.total).toBe(0);
    await as.get('/api/admin/audit?from=2026-02-01&to=2026-01-01').expect(400);
    await as.get('/api/admin/audit?outcome=maybe').expect(400);

    const csv = await as.get('/api/admin/audit?outcome=denied&format=csv').expect(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = (csv.text as string).trim().split('\r\n');
    expect(lines[0]).toBe('Seq,Time (UTC),Actor kind,Actor id,Actor,Role,Action,Object type,Object id,Outcome,Source IP,Detail');
    const deniedAll = ((await as.get('/api/admin/audit?outcome=denied')).body as AuditPage).total;
    expect(lines.length - 1).toBe(deniedAll);
    expect(lines.slice(1).every((l) => l.includes(',denied,'))).toBe(true);
    const exports = (await as.get('/api/admin/audit?action=audit.export').expect(200)).body as AuditPage;
    expect(exports.entries[0]).toMatchObject({ action: 'audit.export', actorRole: 'admin', outcome: 'success' });
    // The filter values (an email here) never go into the audit row itself.
    expect(JSON.stringify(exports.entries[0]!.detail)).not.toContain('@');
  });

  it('the database refuses UPDATE, DELETE and TRUNCATE of audit rows and of the chain heads', async () => {
    const db = h.server.database.db;
    for (const stmt of [
      sql`update audit_log set outcome = 'success' where outcome = 'denied'`,
      sql`delete from audit_log`,
      sql`truncate audit_log`,
      sql`update audit_chain_heads set seq = 0`,
      sql`delete from audit_chain_heads`,
    ]) {
      const err = await db.execute(stmt).then(() => undefined, (e: unknown) => e);
      // insufficient_privilege, raised by the guard triggers
      expect(pgErrorCode(err)).toBe('42501');
    }
    const [{ n }] = (await q<{ n: number }>(sql`select count(*)::int as n from audit_log where outcome = 'denied'`)) as [{ n: number }];
    expect(n).toBeGreaterThan(0);
  });

  it('concurrent writers (two nodes on PostgreSQL) never fork the chain', async () => {
    if (backend === 'postgres') second = await startTestServer(backend, { databaseUrl: dbUrl });
    const nodes = second ? [h, second] : [h];
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { message: 'hi', clientMessageId: uuid() });
    const caseId = ((await staffApi(h, agent).get(`/api/conversations/${conv.id}`)).body as { caseId: string }).caseId;
    await Promise.all(Array.from({ length: 40 }, (_, i) => staffApi(nodes[i % nodes.length]!, agent).get(`/api/cases/${caseId}`).expect(200)));
    const report = await verifyAuditChain(h.server.database.db);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    const [gaps] = await q<{ n: number; max: number }>(sql`select count(*)::int as n, max(seq)::int as max from audit_log where chain = ${agent.me.agencyId}`);
    expect(gaps!.n).toBe(gaps!.max);
  }, 30_000);

  it('verification finds a changed row and a forged row (tampering as the database owner); the command says which', async () => {
    const db = h.server.database.db;
    expect((await verifyAuditChain(db)).ok).toBe(true);
    if (backend === 'postgres') {
      const cli = auditVerify({ DATABASE_URL: dbUrl! });
      expect(cli.out).toContain('OK: every chain is intact');
      expect(cli.code).toBe(0);
    }
    // 1. Someone with owner rights switches the guard off and rewrites a denial as a success.
    const [victim] = await q<{ id: string; seq: number }>(sql`select id, seq::int from audit_log where outcome = 'denied' and chain = ${agent.me.agencyId} order by seq limit 1`);
    await db.execute(sql`alter table audit_log disable trigger audit_log_no_update_delete`);
    await db.execute(sql`update audit_log set outcome = 'success' where id = ${victim!.id}`);
    await db.execute(sql`alter table audit_log enable trigger audit_log_no_update_delete`);
    let report = await verifyAuditChain(db);
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ chain: agent.me.agencyId, seq: victim!.seq, id: victim!.id, problem: 'hash_mismatch' });
    if (backend === 'postgres') {
      const cli = auditVerify({ DATABASE_URL: dbUrl! });
      expect(cli.code).toBe(1);
      expect(cli.out).toContain(`TAMPERED: chain ${agent.me.agencyId} seq ${victim!.seq} (row ${victim!.id}) was changed after it was written`);
    }
    // 2. A row slipped in with the chain trigger off (no link), in another chain.
    await db.execute(sql`alter table audit_log disable trigger audit_log_chain`);
    await db.execute(sql`insert into audit_log (agency_id, actor_kind, action, outcome) values (null, 'system', 'forged', 'success')`);
    await db.execute(sql`alter table audit_log enable trigger audit_log_chain`);
    report = await verifyAuditChain(db);
    expect(report.problems.map((p) => p.problem).sort()).toEqual(['hash_mismatch', 'unchained_row']);
  });
});

// The command itself against a PGlite directory: intact, then a row removed in the middle of the chain.
describe('npm run audit:verify on a PGlite directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cb-audit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports OK, then the first missing row after one is deleted', async () => {
    let database = await openDatabase({ dataDir: dir });
    const audit = new AuditRepository(database.db);
    for (let i = 0; i < 5; i++) await audit.record({ agencyId: null, actorKind: 'system', actorId: null, action: `test.${i}`, outcome: 'success' });
    await database.close();
    let cli = auditVerify({ DATA_DIR: dir });
    expect(cli.out).toContain('5 rows in 1 chain(s)');
    expect(cli.out).toContain('OK: every chain is intact');
    expect(cli.code).toBe(0);

    database = await openDatabase({ dataDir: dir });
    await database.db.execute(sql`alter table audit_log disable trigger audit_log_no_update_delete`);
    await database.db.execute(sql`delete from audit_log where action = 'test.2'`);
    await database.close();
    cli = auditVerify({ DATA_DIR: dir });
    expect(cli.out).toContain('TAMPERED: chain global: seq 3 missing');
    expect(cli.code).toBe(1);
  }, 60_000);
});
