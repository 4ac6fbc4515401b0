import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPublicKey, verify } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../server/src/db/client.js';
import { backends, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';

const DAY = 86_400_000;
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('retention-png')]);

/**
 * Issue #11, retention: after its case type's period, a closed case's messages, files, recordings and the
 * constituent's details go — exactly the expired, unheld ones, tested on a moved clock. Legal hold blocks it; each
 * run that purges writes an Ed25519-signed report (counts, hashed ids) and an audit row; a rerun purges nothing.
 */
describe.each(backends())('retention and legal hold on %s', (backend) => {
  let h: Harness;
  let nowMs = Date.now();
  let admin: StaffSession;
  let agent: StaffSession;
  let auditor: StaffSession;
  let shortType: string;
  let longType: string;
  const c: Record<'expired' | 'held' | 'open' | 'longType', { conv: string; caseId: string; constituentId: string }> = {} as never;

  const db = () => h.server.database.db;
  const q = async <T>(s: ReturnType<typeof sql>) => rowsOf<T>(await db().execute(s));
  const count = async (table: 'messages' | 'attachments', caseId: string) =>
    (await q<{ n: number }>(sql`select count(*)::int as n from ${sql.raw(table)} where conversation_id in (select id from conversations where case_id = ${caseId})`))[0]!.n;
  const as = (s: StaffSession, method: 'get' | 'put' | 'delete', path: string) => h.http[method](path).set('Cookie', s.cookie).set('x-csrf-token', s.csrf);

  async function closedCase(typeId: string, status: 'closed' | 'open' = 'closed') {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: `Retention Person ${uuid().slice(0, 6)}`, email: `r${uuid().slice(0, 6)}@example.org`, message: 'my SSN question', clientMessageId: uuid() });
    const up = await h.http.post(`/api/conversations/${conv.id}/attachments`).set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/octet-stream').set('x-filename', 'photo.png').send(PNG);
    expect(up.status).toBe(201);
    const sent = await h.http.post(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`).send({ clientMessageId: uuid(), body: 'here is a photo', attachmentIds: [up.body.id] });
    expect(sent.status).toBe(201);
    const [row] = await q<{ case_id: string; constituent_id: string }>(sql`select case_id, constituent_id from conversations where id = ${conv.id}`);
    await db().execute(sql`update conversations set status = 'ended', ended_at = now() where id = ${conv.id}`);
    await db().execute(sql`update cases set case_type_id = ${typeId}, status = ${status}, updated_at = now() where id = ${row!.case_id}`);
    return { conv: conv.id, caseId: row!.case_id, constituentId: row!.constituent_id };
  }

  beforeAll(async () => {
    h = await startTestServer(backend, { now: () => new Date(nowMs) });
    admin = await h.login('admin@demo.gov');
    agent = await h.login('agent@demo.gov');
    const types = async (name: string, prefix: string, retentionDays: number) => {
      const res = await h.http.post('/api/admin/case-types').set('Cookie', admin.cookie).set('x-csrf-token', admin.csrf).send({ name, prefix, retentionDays });
      expect(res.status).toBe(201);
      return res.body.id as string;
    };
    shortType = await types('Noise complaint', 'NOI', 30);
    longType = await types('Permit record', 'PRC', 365);
    c.expired = await closedCase(shortType);
    c.held = await closedCase(shortType);
    c.open = await closedCase(shortType, 'open');
    c.longType = await closedCase(longType);
    const [tmpl] = await q<{ hash: string; agency_id: string }>(sql`select password_hash as hash, agency_id from users where email = 'agent@demo.gov'`);
    await db().execute(sql`insert into users (agency_id, email, display_name, role, password_hash) values (${tmpl!.agency_id}, 'auditor@demo.gov', 'Ida Auditor', 'auditor', ${tmpl!.hash})`);
    auditor = await h.login('auditor@demo.gov');
  }, 90_000);
  afterAll(async () => h?.close());

  it('lets only admins set a legal hold, with a reason, audited and readable by staff who see the case', async () => {
    expect((await as(agent, 'put', `/api/cases/${c.held.caseId}/legal-hold`).send({ reason: 'Litigation 2026-14' })).status).toBe(403);
    expect((await as(auditor, 'put', `/api/cases/${c.held.caseId}/legal-hold`).send({ reason: 'x' })).status).toBe(403);
    const noReason = await as(admin, 'put', `/api/cases/${c.held.caseId}/legal-hold`).send({ reason: '  ' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.issues[0].path).toEqual(['reason']);
    expect((await as(admin, 'put', `/api/cases/${uuid()}/legal-hold`).send({ reason: 'x' })).status).toBe(404);
    const set = await as(admin, 'put', `/api/cases/${c.held.caseId}/legal-hold`).send({ reason: 'Litigation 2026-14' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ held: true, reason: 'Litigation 2026-14' });
    const seen = await as(agent, 'get', `/api/cases/${c.held.caseId}/legal-hold`);
    expect(seen.body).toMatchObject({ held: true, reason: 'Litigation 2026-14' });
    const audited = await q<{ n: number }>(sql`select count(*)::int as n from audit_log where action = 'case.legal_hold_set' and object_id = ${c.held.caseId} and outcome = 'success'`);
    expect(audited[0]!.n).toBe(1);
  });

  it('purges nothing before the period is over', async () => {
    nowMs = Date.now() + 29 * DAY;
    expect(await h.server.app.services.retention.run()).toEqual([]);
    expect(await count('messages', c.expired.caseId)).toBeGreaterThan(0);
  });

  it('after the period, removes exactly the expired, unheld closed case — and signs a report of it', async () => {
    const before = { held: await count('messages', c.held.caseId), open: await count('messages', c.open.caseId), long: await count('messages', c.longType.caseId) };
    nowMs = Date.now() + 31 * DAY;
    const reports = await h.server.app.services.retention.run();
    expect(reports).toHaveLength(1);
    const r = reports[0]!;
    expect(r.counts).toMatchObject({ cases: 1, attachments: 1, constituents: 1 });
    expect(r.counts.messages).toBeGreaterThanOrEqual(2);
    expect(r.caseHashes).toHaveLength(1);
    expect(r.body).not.toContain(c.expired.caseId);

    // Gone: messages, files, the constituent's details; the case row stays, anonymised.
    expect(await count('messages', c.expired.caseId)).toBe(0);
    expect(await count('attachments', c.expired.caseId)).toBe(0);
    const [kase] = await q<{ title: string; purged_at: string | null; reference: string }>(sql`select title, purged_at, reference from cases where id = ${c.expired.caseId}`);
    expect(kase).toMatchObject({ title: 'Removed under the retention schedule' });
    expect(kase!.purged_at).not.toBeNull();
    const [person] = await q<{ display_name: string | null; email: string | null }>(sql`select display_name, email from constituents where id = ${c.expired.constituentId}`);
    expect(person).toEqual({ display_name: null, email: null });
    // Kept: the held case, the open case, the case whose type keeps a year.
    expect(await count('messages', c.held.caseId)).toBe(before.held);
    expect(await count('messages', c.open.caseId)).toBe(before.open);
    expect(await count('messages', c.longType.caseId)).toBe(before.long);
    expect(await count('attachments', c.held.caseId)).toBe(1);

    // The signature checks out with the published public key alone; a changed report does not.
    const check = await as(auditor, 'get', `/api/admin/purge-reports/${r.id}/verify`);
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({ valid: true, keyId: r.keyId });
    expect(verify(null, Buffer.from(r.body), createPublicKey(check.body.publicKey), Buffer.from(r.signature, 'base64'))).toBe(true);
    await db().execute(sql`update purge_reports set body = replace(body, '"cases":1', '"cases":0') where id = ${r.id}`);
    expect((await as(admin, 'get', `/api/admin/purge-reports/${r.id}/verify`)).body.valid).toBe(false);

    // Audited as a system action; the audit log itself keeps every row.
    const audit = await q<{ n: number }>(sql`select count(*)::int as n from audit_log where action = 'retention.purge' and object_id = ${r.id} and actor_kind = 'system'`);
    expect(audit[0]!.n).toBe(1);
  });

  it('is idempotent: a rerun, even two at once, purges nothing more', async () => {
    const again = await Promise.all([h.server.app.services.retention.run(), h.server.app.services.retention.run()]);
    expect(again.flat()).toEqual([]);
  });

  it('lists reports to admins and auditors only', async () => {
    const list = await as(auditor, 'get', '/api/admin/purge-reports');
    expect(list.status).toBe(200);
    expect(list.body.reports).toHaveLength(1);
    expect((await as(admin, 'get', '/api/admin/purge-reports')).status).toBe(200);
    expect((await as(agent, 'get', '/api/admin/purge-reports')).status).toBe(403);
    // Auditors still may not set holds or read the case.
    expect((await as(auditor, 'get', `/api/cases/${c.held.caseId}`)).status).toBe(403);
  });

  it('purges a held case only after the hold is cleared', async () => {
    nowMs = Date.now() + 40 * DAY;
    expect(await h.server.app.services.retention.run()).toEqual([]);
    expect(await count('messages', c.held.caseId)).toBeGreaterThan(0);
    const cleared = await as(admin, 'delete', `/api/cases/${c.held.caseId}/legal-hold`);
    expect(cleared.body).toMatchObject({ held: false });
    const reports = await h.server.app.services.retention.run();
    expect(reports.map((r) => r.counts.cases)).toEqual([1]);
    expect(await count('messages', c.held.caseId)).toBe(0);
    // A purged case cannot be put on hold: nothing is left to hold.
    const late = await as(admin, 'put', `/api/cases/${c.held.caseId}/legal-hold`).send({ reason: 'too late' });
    expect(late.status).toBe(409);
  });
});
