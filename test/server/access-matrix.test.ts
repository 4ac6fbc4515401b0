import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { eq, sql } from 'drizzle-orm';
import type { Message } from '@casebridge/shared';
import { agencies, groupMemberships, groups, users } from '../../server/src/db/schema.js';
import {
  addOtherAgency,
  backends,
  collect,
  sleep,
  startTestServer,
  uuid,
  waitForDisconnect,
  type ClientSocket,
  type Harness,
  type StaffSession,
} from '../support/harness.js';

/**
 * The access-control matrix of RELIABILITY.md §5.5 as data: (actor × action × resource → expected), run over
 * HTTP and, where the action is also a socket command, over Socket.IO with an ack. Every row must come out
 * exactly as written: an unexpected allow and an unexpected denial are both failures, printed with the row.
 *
 * Decisions this matrix encodes (what the code does today):
 * - Object-level denials are 404 (no existence oracle): another constituent's, another group's or another
 *   agency's conversation, case or file is "not found". Function-level denials are 403: a constituent calling a
 *   staff-only route or command (claim, transfer, cases, dashboard, reports, admin), an agent opening the
 *   dashboard or reports, a non-admin changing settings, an admin taking part in a conversation. A role check
 *   that comes before the lookup answers 403 whatever the id (a constituent of another agency claiming our
 *   conversation gets 403, not 404): that reveals nothing about the object.
 * - Admins READ every conversation, message, internal note, file and case of their agency (footnote ¹ of §5.5:
 *   admin = content reader), hear its live events, and change settings; they never take part: sending,
 *   claiming, transferring, ending and working cases are 403.
 * - Supervisors are scoped to their groups like agents (SV-1 of §5.5; the demo supervisor is in General,
 *   Permits and Benefits, not in the Licensing group created here). Within their groups they may reply
 *   publicly to any conversation (stepping in) without taking it; agents reply only to their own and otherwise
 *   add internal notes.
 * - Agents and supervisors may claim, transfer and end any conversation of their groups, including a
 *   colleague's (the "policy" column of §5.5: AG-1 transfers and closes within G1).
 * - A constituent reading internal notes is not an error: the messages call succeeds and the note is simply
 *   absent. The runner maps "call allowed but the note is not in it" to 404 (the note does not exist for them).
 * - A disabled account's existing session is refused everywhere (401), its open socket is closed, and a new
 *   socket is refused at the handshake.
 * - Auditors (AUD) read and export their agency's audit log and nothing else: every other route and socket
 *   command is 403 (one gate before all routes; a route added later stays closed to them), their socket hears no
 *   conversation. They do not read cases or conversations: the audit log names objects by id, and an auditor
 *   reading what constituents wrote would be one more reader of personal data without taking part in the work.
 * - Ids inside a request body that belong to another agency (a group in routing rules) are refused as
 *   INVALID_PAYLOAD naming the field (400 "No such group"): the body-level form of the object-level denial.
 */

jest.setTimeout(120_000);

type Expected = 'allow' | 400 | 401 | 403 | 404;
type Outcome = Expected | `unexpected${string}`;

const ACTORS = ['CA', 'CB', 'CX', 'AG1', 'AG2', 'SV', 'ADM', 'DIS', 'XAG', 'XADM', 'ANON', 'AUD'] as const;
type Actor = (typeof ACTORS)[number];
/**
 * CA, CB: anonymous constituents of Springfield (CA owns conversation A, CB owns B). CX: constituent of
 * Shelbyville. AG1: agent@demo.gov (General, Permits). AG2: an agent only in Licensing (G2). SV: the demo
 * supervisor (General, Permits, Benefits). ADM: Springfield's admin. DIS: an agent of General whose account was
 * disabled while signed in. XAG, XADM: agent and admin of Shelbyville. ANON: no credentials at all. AUD: an
 * auditor of Springfield (issue #11), deliberately also a member of General (G1) to show membership gives nothing.
 */

/** Expectations per actor, in ACTORS order. */
const row = (...e: Expected[]): Record<Actor, Expected> => {
  if (e.length !== ACTORS.length) throw new Error(`row needs ${ACTORS.length} expectations, got ${e.length}`);
  return Object.fromEntries(ACTORS.map((a, i) => [a, e[i]!])) as Record<Actor, Expected>;
};
const Y = 'allow' as const;

/**
 * THE MATRIX. Resources: A = CA's conversation in General (G1), taken by AG1; B = CB's conversation in G1,
 * queued; G2 = a conversation in Licensing, taken by AG2; X = CX's conversation in Shelbyville, taken by XAG.
 * freshG1 / freshG2 / freshX: a new queued conversation of that kind for every row (actions that change state),
 * owned by CA (freshG1) or CX (freshX). noteA/noteG2/noteX: an internal note there. attA: a file CA sent in A;
 * attNote: a file on AG1's internal note in A. caseA / caseG2 / caseX: the case of that conversation;
 * freshCase*: the case of a fresh conversation.
 */
//                                                    CA   CB   CX   AG1  AG2  SV   ADM  DIS  XAG  XADM ANON AUD
const MATRIX: Record<string, Record<string, Record<Actor, Expected>>> = {
  readConversation: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    B: /*                                          */ row(404, Y, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    G2: /*                                         */ row(404, 404, 404, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  readMessages: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    B: /*                                          */ row(404, Y, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    G2: /*                                         */ row(404, 404, 404, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  readInternalNote: {
    noteA: /*                                      */ row(404, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    noteG2: /*                                     */ row(404, 404, 404, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    noteX: /*                                      */ row(404, 404, 404, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  listConversations: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    G2: /*                                         */ row(404, 404, 404, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  searchConversations: {
    A: /*                                          */ row(403, 403, 403, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    G2: /*                                         */ row(403, 403, 403, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    X: /*                                          */ row(403, 403, 403, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  exportTranscript: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  sendPublic: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    B: /*                                          */ row(404, Y, 404, 403, 404, Y, 403, 401, 404, 404, 401, 403),
    G2: /*                                         */ row(404, 404, 404, 404, Y, 404, 403, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  sendInternalNote: {
    A: /*                                          */ row(403, 404, 404, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    B: /*                                          */ row(404, 403, 404, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    G2: /*                                         */ row(404, 404, 404, 404, Y, 404, 403, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, 403, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  claim: {
    freshG1: /*                                    */ row(403, 403, 403, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    freshG2: /*                                    */ row(403, 403, 403, 404, Y, 404, 403, 401, 404, 404, 401, 403),
    freshX: /*                                     */ row(403, 403, 403, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  transfer: {
    freshG1: /*                                    */ row(403, 403, 403, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    freshG2: /*                                    */ row(403, 403, 403, 404, Y, 404, 403, 401, 404, 404, 401, 403),
    freshX: /*                                     */ row(403, 403, 403, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  end: {
    freshG1: /*                                    */ row(Y, 404, 404, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    freshG2: /*                                    */ row(404, 404, 404, 404, Y, 404, 403, 401, 404, 404, 401, 403),
    freshX: /*                                     */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  downloadAttachment: {
    attA: /*                                       */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    attNote: /*                                    */ row(404, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    attG2: /*                                      */ row(404, 404, 404, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    attX: /*                                       */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  readCase: {
    caseA: /*                                      */ row(403, 403, 403, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    caseG2: /*                                     */ row(403, 403, 403, 404, Y, 404, Y, 401, 404, 404, 401, 403),
    caseX: /*                                      */ row(403, 403, 403, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  updateCase: {
    freshCaseG1: /*                                */ row(403, 403, 403, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    freshCaseG2: /*                                */ row(403, 403, 403, 404, Y, 404, 403, 401, 404, 404, 401, 403),
    freshCaseX: /*                                 */ row(403, 403, 403, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  readDashboard: {
    dashboard: /*                                  */ row(403, 403, 403, 403, 403, Y, Y, 401, 403, Y, 401, 403),
  },
  exportReport: {
    reportAll: /*                                  */ row(403, 403, 403, 403, 403, Y, Y, 401, 403, Y, 401, 403),
    reportG1: /*                                   */ row(403, 403, 403, 403, 403, Y, Y, 401, 403, 404, 401, 403),
    reportG2: /*                                   */ row(403, 403, 403, 403, 403, 404, Y, 401, 403, 404, 401, 403),
  },
  changeAdminSettings: {
    createCaseType: /*                             */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, Y, 401, 403),
    springfieldCaseType: /*                        */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, 404, 401, 403),
    springfieldRoutingRules: /*                    */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, 400, 401, 403),
    twilioSettings: /*                             */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, Y, 401, 403),
    groupG1: /*                                    */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, 404, 401, 403),
    disableUser: /*                                */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, 404, 401, 403),
  },
  // The audit log: allowed means the Springfield entries (AG1 reading conversation A) came back.
  readAuditLog: {
    springfield: /*                                */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, 404, 401, Y),
  },
  exportAuditLog: {
    springfield: /*                                */ row(403, 403, 403, 403, 403, 403, Y, 401, 403, 404, 401, Y),
  },
  // Socket-only commands.
  typing: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, 403, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, 403, 401, 403),
  },
  // Admins may send receipts: accepted and ignored (an admin looking on is not the agent reading).
  readReceipt: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 403),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 403),
  },
  // Socket only: does this actor's open socket hear message:created for it? (404: never hears it.)
  subscribeLive: {
    A: /*                                          */ row(Y, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 404),
    noteA: /*                                      */ row(404, 404, 404, Y, 404, Y, Y, 401, 404, 404, 401, 404),
    B: /*                                          */ row(404, Y, 404, Y, 404, Y, Y, 401, 404, 404, 401, 404),
    G2: /*                                         */ row(404, 404, 404, 404, Y, 404, Y, 401, 404, 404, 401, 404),
    X: /*                                          */ row(404, 404, Y, 404, 404, 404, 404, 401, Y, Y, 401, 404),
  },
};

/** Actions that are also Socket.IO commands run on both transports. */
const SOCKET_ACTIONS = new Set(['typing', 'readReceipt', 'readMessages', 'readInternalNote', 'sendPublic', 'sendInternalNote', 'claim', 'transfer', 'end']);
const HTTP_ACTIONS = new Set(Object.keys(MATRIX).filter((a) => !['subscribeLive', 'typing', 'readReceipt'].includes(a)));

interface Row {
  actor: Actor;
  action: string;
  resource: string;
  expected: Expected;
}
const ROWS: Row[] = Object.entries(MATRIX).flatMap(([action, byResource]) =>
  Object.entries(byResource).flatMap(([resource, byActor]) => ACTORS.map((actor) => ({ actor, action, resource, expected: byActor[actor] }))),
);

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('matrix-png')]);
const PDF = Buffer.from('%PDF-1.7\n%matrix\n');
const rowsOf = <T>(r: unknown) => (r as { rows: T[] }).rows;

describe.each(backends())('access-control matrix on %s', (backend) => {
  let h: Harness;
  const staff: Partial<Record<Actor, StaffSession>> = {};
  const tokens: Partial<Record<Actor, string>> = {};
  const sockets: Partial<Record<Actor, ClientSocket>> = {};
  let disSocket: ClientSocket;
  const g: Record<'G1' | 'permits' | 'G2' | 'xGeneral' | 'xOther', string> = {} as never;
  let springfieldId: string;
  let shelbyvilleId: string;
  let matrixCaseTypeId: string;
  let victimUserId: string;

  interface Conv {
    id: string;
    caseId: string;
    ownerToken: string;
    /** A unique word in the constituent's name, for search. */
    marker: string;
  }
  const fx: Record<string, Conv> = {};
  const notes: Record<string, string> = {};
  const files: Record<string, string> = {};

  const db = () => h.server.database.db;
  const one = async <T>(q: ReturnType<typeof sql>) => rowsOf<T>(await db().execute(q))[0]!;

  async function insertStaff(email: string, role: 'agent' | 'admin' | 'auditor', agencyId: string, groupIds: string[]): Promise<string> {
    const [template] = await db().select({ hash: users.passwordHash }).from(users).where(eq(users.email, 'agent@demo.gov'));
    const [u] = await db()
      .insert(users)
      .values({ agencyId, email, displayName: email.split('@')[0]!, role, passwordHash: template!.hash })
      .returning({ id: users.id });
    if (groupIds.length) await db().insert(groupMemberships).values(groupIds.map((groupId) => ({ groupId, userId: u!.id })));
    return u!.id;
  }

  async function newConversation(kind: 'G1' | 'G2' | 'X', name = 'Matrix Person'): Promise<Conv> {
    const { token } = await h.widgetSession(kind === 'X' ? 'shelbyville-key' : undefined);
    const marker = `m${uuid().replace(/-/g, '').slice(0, 12)}`;
    const { id } = await h.startConversation(token, { name: `${name} ${marker}`, message: `hello from ${marker}`, clientMessageId: uuid() });
    if (kind === 'G2') {
      await db().execute(sql`update conversations set group_id = ${g.G2} where id = ${id}`);
      await db().execute(sql`update cases set group_id = ${g.G2} where id = (select case_id from conversations where id = ${id})`);
    }
    const { case_id } = await one<{ case_id: string }>(sql`select case_id from conversations where id = ${id}`);
    return { id, caseId: case_id, ownerToken: token, marker };
  }

  const api = (actor: Actor, method: 'get' | 'post' | 'put' | 'patch', path: string, body?: object) => {
    const req = h.http[method](path);
    const s = staff[actor];
    if (s) req.set('Cookie', s.cookie).set('x-csrf-token', s.csrf);
    else if (tokens[actor]) req.set('Authorization', `Bearer ${tokens[actor]}`);
    return body === undefined ? req : req.send(body);
  };

  beforeAll(async () => {
    h = await startTestServer(backend, {
      // The matrix makes many sessions, chats and messages from one address: the limits are not under test here.
      limits: {
        widgetSessionsPerIp: { points: 100_000, duration: 60 },
        conversationsPerIp: { points: 100_000, duration: 3600 },
        messagesPerSession: { points: 100_000, duration: 60 },
        uploadsPerConstituent: { points: 1000, duration: 3600 },
      },
    });
    await addOtherAgency(h);
    const [spr] = await db().select().from(agencies).where(eq(agencies.slug, 'springfield'));
    const [shb] = await db().select().from(agencies).where(eq(agencies.slug, 'shelbyville'));
    springfieldId = spr!.id;
    shelbyvilleId = shb!.id;
    const groupId = async (agencyId: string, name: string) =>
      (await one<{ id: string }>(sql`select id from groups where agency_id = ${agencyId} and name = ${name}`)).id;
    g.G1 = await groupId(springfieldId, 'General');
    g.permits = await groupId(springfieldId, 'Permits');
    g.xGeneral = await groupId(shelbyvilleId, 'General');
    const [licensing] = await db().insert(groups).values({ agencyId: springfieldId, name: 'Licensing' }).returning();
    g.G2 = licensing!.id;
    const [xOther] = await db().insert(groups).values({ agencyId: shelbyvilleId, name: 'Licences' }).returning();
    g.xOther = xOther!.id;

    await insertStaff('g2agent@demo.gov', 'agent', springfieldId, [g.G2]);
    await insertStaff('disabled@demo.gov', 'agent', springfieldId, [g.G1]);
    await insertStaff('agent@shelbyville.gov', 'agent', shelbyvilleId, [g.xGeneral, g.xOther]);
    await insertStaff('admin@shelbyville.gov', 'admin', shelbyvilleId, []);
    victimUserId = await insertStaff('victim@demo.gov', 'agent', springfieldId, [g.G1]);
    await insertStaff('auditor@demo.gov', 'auditor', springfieldId, [g.G1]);
    staff.AG1 = await h.login('agent@demo.gov');
    staff.AG2 = await h.login('g2agent@demo.gov');
    staff.SV = await h.login('supervisor@demo.gov');
    staff.ADM = await h.login('admin@demo.gov');
    staff.XAG = await h.login('agent@shelbyville.gov');
    staff.XADM = await h.login('admin@shelbyville.gov');
    staff.DIS = await h.login('disabled@demo.gov');
    staff.AUD = await h.login('auditor@demo.gov');

    // The disabled user: signed in with a socket open, then disabled by the admin.
    disSocket = await h.staffSocket(staff.DIS);
    const disClosed = waitForDisconnect(disSocket, 5000);
    const dis = await api('ADM', 'post', `/api/admin/users/${staff.DIS.me.id}/disable`);
    expect(dis.status).toBe(204);
    await disClosed;

    // Conversations A, B, G2 and X with messages, internal notes and files.
    fx.A = await newConversation('G1', 'Ada');
    fx.B = await newConversation('G1', 'Bo');
    fx.G2 = await newConversation('G2', 'Cy');
    fx.X = await newConversation('X', 'Xena');
    tokens.CA = fx.A.ownerToken;
    tokens.CB = fx.B.ownerToken;
    tokens.CX = fx.X.ownerToken;
    const take = async (actor: Actor, c: Conv) => expect((await api(actor, 'post', `/api/conversations/${c.id}/claim`)).status).toBe(200);
    await take('AG1', fx.A);
    await take('AG2', fx.G2);
    await take('XAG', fx.X);

    const upload = async (auth: { token?: string; staff?: StaffSession }, c: Conv, bytes: Buffer) => {
      const req = h.http.post(`/api/conversations/${c.id}/attachments`).set('Content-Type', 'application/octet-stream');
      if (auth.token) req.set('Authorization', `Bearer ${auth.token}`);
      if (auth.staff) req.set('Cookie', auth.staff.cookie).set('x-csrf-token', auth.staff.csrf);
      const res = await req.set('x-filename', 'evidence.png').send(bytes);
      expect(res.status).toBe(201);
      return res.body.id as string;
    };
    const send = async (auth: { token?: string; staff?: StaffSession }, c: Conv, body: object) => {
      const req = h.http.post(`/api/conversations/${c.id}/messages`);
      if (auth.token) req.set('Authorization', `Bearer ${auth.token}`);
      if (auth.staff) req.set('Cookie', auth.staff.cookie).set('x-csrf-token', auth.staff.csrf);
      const res = await req.send({ clientMessageId: uuid(), ...body });
      expect(res.status).toBe(201);
    };
    files.attA = await upload({ token: fx.A.ownerToken }, fx.A, PNG);
    await send({ token: fx.A.ownerToken }, fx.A, { body: 'photo of the pothole', attachmentIds: [files.attA] });
    files.attNote = await upload({ staff: staff.AG1 }, fx.A, PDF);
    notes.noteA = `NOTE-A ${uuid()}`;
    await send({ staff: staff.AG1 }, fx.A, { body: notes.noteA, visibility: 'internal', attachmentIds: [files.attNote] });
    files.attG2 = await upload({ token: fx.G2.ownerToken }, fx.G2, PNG);
    await send({ token: fx.G2.ownerToken }, fx.G2, { body: 'my licence', attachmentIds: [files.attG2] });
    notes.noteG2 = `NOTE-G2 ${uuid()}`;
    await send({ staff: staff.AG2 }, fx.G2, { body: notes.noteG2, visibility: 'internal' });
    files.attX = await upload({ token: fx.X.ownerToken }, fx.X, PNG);
    await send({ token: fx.X.ownerToken }, fx.X, { body: 'shelbyville photo', attachmentIds: [files.attX] });
    notes.noteX = `NOTE-X ${uuid()}`;
    await send({ staff: staff.XAG }, fx.X, { body: notes.noteX, visibility: 'internal' });

    const ct = await api('ADM', 'post', '/api/admin/case-types', { name: 'Matrix type', prefix: 'MTX' });
    expect(ct.status).toBe(201);
    matrixCaseTypeId = ct.body.id;
    // One routing rule (for calls, so chats are not affected) whose group is ours: the rules are Springfield's own.
    const rules = await api('ADM', 'put', '/api/admin/routing-rules', { rules: [{ name: 'Calls to Licensing', conditions: { channels: ['voice'] }, groupId: g.G2 }] });
    expect(rules.status).toBe(200);

    for (const a of ['CA', 'CB', 'CX'] as const) sockets[a] = await h.constituentSocket(tokens[a]!);
    for (const a of ['AG1', 'AG2', 'SV', 'ADM', 'XAG', 'XADM', 'AUD'] as const) sockets[a] = await h.staffSocket(staff[a]!);
  }, 120_000);
  afterAll(async () => h?.close());

  // ---- the runner ------------------------------------------------------------------------------------

  const httpOutcome = (res: { status: number; body?: { error?: { code?: string } } }): Outcome => {
    if (res.status >= 200 && res.status < 300) return 'allow';
    if ([400, 401, 403, 404].includes(res.status)) return res.status as Expected;
    return `unexpected ${res.status} ${res.body?.error?.code ?? ''}`;
  };
  const ackOutcome = (ack: { ok: boolean; error?: { code: string } }): Outcome => {
    if (ack.ok) return 'allow';
    const byCode: Record<string, Expected> = { NOT_FOUND: 404, FORBIDDEN: 403, UNAUTHENTICATED: 401, INVALID_PAYLOAD: 400 };
    return byCode[ack.error!.code] ?? `unexpected ${ack.error!.code}`;
  };

  /** A socket for the actor (a fresh one for a fixture's owner), or the handshake's refusal as an outcome. */
  async function socketFor(actor: Actor, ownerToken?: string): Promise<{ socket?: ClientSocket; refused?: Outcome; temp?: boolean }> {
    try {
      if (ownerToken) return { socket: await h.constituentSocket(ownerToken), temp: true };
      if (sockets[actor]) return { socket: sockets[actor] };
      const s = actor === 'DIS' ? await h.staffSocket(staff.DIS!) : await h.staffSocket({ cookie: '', csrf: '', me: {} as never });
      return { socket: s, temp: true };
    } catch (err) {
      return { refused: (err as Error).message === 'UNAUTHENTICATED' ? 401 : `unexpected handshake ${(err as Error).message}` };
    }
  }
  async function emit(actor: Actor, event: string, payload: object, ownerToken?: string): Promise<{ outcome: Outcome; data?: unknown }> {
    const { socket, refused, temp } = await socketFor(actor, ownerToken);
    if (!socket) return { outcome: refused! };
    const ack = (await (socket.timeout(5000).emitWithAck as (e: string, p: unknown) => Promise<unknown>)(event, payload)) as {
      ok: boolean;
      data?: unknown;
      error?: { code: string };
    };
    if (temp) socket.close();
    return { outcome: ackOutcome(ack), data: ack.data };
  }

  /** Fresh resources for actions that change state: one per row and transport. */
  async function fresh(resource: string): Promise<Conv> {
    const kind = resource.endsWith('G1') ? 'G1' : resource.endsWith('G2') ? 'G2' : 'X';
    return newConversation(kind);
  }
  const convState = (id: string) =>
    one<{ status: string; assignee_id: string | null; group_id: string; version: number }>(
      sql`select status, assignee_id, group_id, version from conversations where id = ${id}`,
    );
  const caseState = (id: string) => one<{ version: number; priority: string }>(sql`select version, priority from cases where id = ${id}`);

  /** Runs one row on one transport and returns what happened; also checks a denial changed nothing. */
  async function run(r: Row, transport: 'http' | 'socket'): Promise<Outcome> {
    const conv = (res: string) => fx[res.replace(/^(note|case)/, '').replace(/^att/, '')]!;
    switch (r.action) {
      case 'typing':
        return (await emit(r.actor, 'typing:set', { conversationId: fx[r.resource]!.id, isTyping: true })).outcome;
      case 'readReceipt':
        return (await emit(r.actor, 'receipt:set', { conversationId: fx[r.resource]!.id, readSeq: 1 })).outcome;
      case 'readConversation':
        return httpOutcome(await api(r.actor, 'get', `/api/conversations/${fx[r.resource]!.id}`));
      case 'readMessages':
      case 'readInternalNote': {
        const c = r.action === 'readMessages' ? fx[r.resource]! : conv(r.resource);
        let outcome: Outcome;
        let messages: Message[] = [];
        if (transport === 'http') {
          const res = await api(r.actor, 'get', `/api/conversations/${c.id}/messages`);
          outcome = httpOutcome(res);
          messages = res.body?.messages ?? [];
        } else {
          const res = await emit(r.actor, 'conversation:sync', { conversationId: c.id, afterSeq: 0 });
          outcome = res.outcome;
          messages = (res.data as { messages?: Message[] } | undefined)?.messages ?? [];
        }
        if (outcome !== 'allow') return outcome;
        // Internal notes never reach a constituent, whatever the transport.
        const internal = messages.filter((m) => m.visibility === 'internal');
        if (r.actor.startsWith('C') && internal.length) return 'unexpected: a constituent received internal notes';
        if (r.action === 'readMessages') return messages.length > 0 ? 'allow' : 'unexpected: no messages';
        return messages.some((m) => m.body === notes[r.resource]) ? 'allow' : 404;
      }
      case 'listConversations': {
        const res = await api(r.actor, 'get', '/api/conversations');
        if (httpOutcome(res) !== 'allow') return httpOutcome(res);
        return (res.body.conversations as { id: string }[]).some((c) => c.id === fx[r.resource]!.id) ? 'allow' : 404;
      }
      case 'searchConversations': {
        const res = await api(r.actor, 'get', `/api/inbox?view=open&q=${fx[r.resource]!.marker}`);
        if (httpOutcome(res) !== 'allow') return httpOutcome(res);
        return (res.body.conversations as { id: string }[]).some((c) => c.id === fx[r.resource]!.id) ? 'allow' : 404;
      }
      case 'exportTranscript':
        return httpOutcome(await api(r.actor, 'get', `/api/conversations/${fx[r.resource]!.id}/transcript`));
      case 'sendPublic':
      case 'sendInternalNote': {
        const c = fx[r.resource]!;
        const visibility = r.action === 'sendPublic' ? 'public' : 'internal';
        const body = `${r.action} by ${r.actor} via ${transport}`;
        const before = Number((await one<{ n: number }>(sql`select count(*)::int as n from messages where conversation_id = ${c.id}`)).n);
        const outcome =
          transport === 'http'
            ? httpOutcome(await api(r.actor, 'post', `/api/conversations/${c.id}/messages`, { clientMessageId: uuid(), body, visibility }))
            : (await emit(r.actor, 'message:send', { conversationId: c.id, clientMessageId: uuid(), body, visibility })).outcome;
        const after = Number((await one<{ n: number }>(sql`select count(*)::int as n from messages where conversation_id = ${c.id}`)).n);
        if (outcome !== 'allow' && after !== before) return `unexpected: denied (${outcome}) but a message was stored`;
        return outcome;
      }
      case 'claim':
      case 'transfer':
      case 'end': {
        const c = await fresh(r.resource);
        const owner = r.actor === 'CA' && r.resource === 'freshG1' ? c.ownerToken : r.actor === 'CX' && r.resource === 'freshX' ? c.ownerToken : undefined;
        if (owner) tokens[r.actor] = owner;
        const before = await convState(c.id);
        const toGroupId = r.resource === 'freshX' ? g.xOther : g.permits;
        let outcome: Outcome;
        try {
          if (transport === 'http') {
            const path = `/api/conversations/${c.id}/${r.action}`;
            outcome = httpOutcome(await api(r.actor, 'post', path, r.action === 'transfer' ? { toGroupId } : {}));
          } else {
            const event = `conversation:${r.action}`;
            outcome = (await emit(r.actor, event, r.action === 'transfer' ? { conversationId: c.id, toGroupId } : { conversationId: c.id }, owner))
              .outcome;
          }
        } finally {
          if (owner) tokens[r.actor] = fx[r.actor === 'CA' ? 'A' : 'X']!.ownerToken;
        }
        const after = await convState(c.id);
        if (outcome !== 'allow') return JSON.stringify(after) === JSON.stringify(before) ? outcome : `unexpected: denied (${outcome}) but the conversation changed`;
        const done =
          r.action === 'claim'
            ? after.status === 'active' && after.assignee_id === staff[r.actor]?.me.id
            : r.action === 'transfer'
              ? after.group_id === toGroupId
              : after.status === 'ended';
        return done ? 'allow' : `unexpected: allowed but not done (${JSON.stringify(after)})`;
      }
      case 'downloadAttachment': {
        const res = await api(r.actor, 'get', `/api/attachments/${files[r.resource]}`);
        return httpOutcome(res);
      }
      case 'readCase':
        return httpOutcome(await api(r.actor, 'get', `/api/cases/${conv(r.resource).caseId}`));
      case 'updateCase': {
        const c = await fresh(r.resource);
        const before = await caseState(c.caseId);
        const outcome = httpOutcome(await api(r.actor, 'patch', `/api/cases/${c.caseId}`, { version: before.version, priority: 'high' }));
        const after = await caseState(c.caseId);
        if (outcome !== 'allow') return JSON.stringify(after) === JSON.stringify(before) ? outcome : `unexpected: denied (${outcome}) but the case changed`;
        return after.priority === 'high' ? 'allow' : 'unexpected: allowed but priority unchanged';
      }
      case 'readDashboard':
        return httpOutcome(await api(r.actor, 'get', '/api/dashboard'));
      case 'exportReport': {
        const group = r.resource === 'reportG1' ? `&groupId=${g.G1}` : r.resource === 'reportG2' ? `&groupId=${g.G2}` : '';
        const res = await api(r.actor, 'get', `/api/reports?from=2026-01-01&to=2026-01-31&format=csv${group}`);
        return httpOutcome(res);
      }
      case 'changeAdminSettings':
        return httpOutcome(await adminChange(r.actor, r.resource));
      case 'readAuditLog':
      case 'exportAuditLog': {
        const csv = r.action === 'exportAuditLog' ? '&format=csv' : '';
        const res = await api(r.actor, 'get', `/api/admin/audit?objectId=${fx.A!.id}&action=conversation.read${csv}`);
        if (httpOutcome(res) !== 'allow') return httpOutcome(res);
        const text = csv ? res.text : JSON.stringify(res.body.entries);
        return text.includes(fx.A!.id) ? 'allow' : 404;
      }
    }
    throw new Error(`no runner for ${r.action}`);
  }

  async function adminChange(actor: Actor, resource: string) {
    switch (resource) {
      case 'createCaseType': {
        const prefix = Array.from({ length: 6 }, () => String.fromCharCode(65 + Math.floor(Math.random() * 26))).join('');
        return api(actor, 'post', '/api/admin/case-types', { name: `Type ${prefix}`, prefix });
      }
      case 'springfieldCaseType': {
        const { version } = await one<{ version: number }>(sql`select version from case_types where id = ${matrixCaseTypeId}`);
        return api(actor, 'put', `/api/admin/case-types/${matrixCaseTypeId}`, { version, name: `Matrix type ${actor}`, prefix: 'MTX' });
      }
      case 'springfieldRoutingRules': {
        const current = await api('ADM', 'get', '/api/admin/routing-rules');
        const rules = (current.body.rules as { id: string }[]).map(({ id: _id, ...rest }) => rest);
        return api(actor, 'put', '/api/admin/routing-rules', { rules });
      }
      case 'twilioSettings':
        return api(actor, 'put', '/api/admin/twilio', {
          accountSid: `AC${'0'.repeat(31)}${ACTORS.indexOf(actor).toString(16)}`,
          publicBaseUrl: 'https://cases.example.gov',
          numbers: [`+1555000${String(ACTORS.indexOf(actor)).padStart(4, '0')}`],
        });
      case 'groupG1':
        return api(actor, 'put', `/api/admin/groups/${g.G1}`, { routing: 'manual' });
      case 'disableUser': {
        // Re-enable the victim so every row disables an active account.
        await db().execute(sql`update users set disabled_at = null where id = ${victimUserId}`);
        return api(actor, 'post', `/api/admin/users/${victimUserId}/disable`);
      }
    }
    throw new Error(`no admin resource ${resource}`);
  }

  /** Runs every row of one action over its transports; fails with the list of rows that came out otherwise. */
  async function runAction(action: string) {
    const failures: string[] = [];
    let unexpectedAllows = 0;
    let cases = 0;
    for (const r of ROWS.filter((x) => x.action === action)) {
      const transports = [...(HTTP_ACTIONS.has(action) ? (['http'] as const) : []), ...(SOCKET_ACTIONS.has(action) ? (['socket'] as const) : [])];
      for (const t of transports) {
        cases++;
        const got = await run(r, t);
        if (got !== r.expected) {
          if (got === 'allow') unexpectedAllows++;
          failures.push(`${r.actor.padEnd(4)} ${r.action} ${r.resource} [${t}]: expected ${r.expected}, got ${got}`);
        }
      }
    }
    expect({ action, cases: cases > 0, unexpectedAllows, failures }).toEqual({ action, cases: true, unexpectedAllows: 0, failures: [] });
  }

  it('the table has an expectation for every actor on every action and resource', () => {
    for (const [action, byResource] of Object.entries(MATRIX)) {
      for (const [resource, byActor] of Object.entries(byResource)) {
        expect({ action, resource, actors: Object.keys(byActor) }).toEqual({ action, resource, actors: [...ACTORS] });
      }
    }
    expect(ROWS.length).toBeGreaterThan(500);
  });

  for (const action of Object.keys(MATRIX).filter((a) => a !== 'subscribeLive')) {
    it(`${action}: every actor gets exactly what the matrix says`, async () => {
      await runAction(action);
    });
  }

  it('subscribeLive: an open socket hears message:created only for conversations (and notes) its actor may see', async () => {
    expect(disSocket.connected).toBe(false);
    const heard = Object.fromEntries(
      (Object.entries(sockets) as [Actor, ClientSocket][]).map(([a, s]) => [a, collect(s, 'message:created')]),
    ) as Partial<Record<Actor, Message[]>>;
    // Each live event under test, sent by someone entitled to send it.
    const sent: Record<string, string> = {};
    const sendAs = async (auth: { token?: string; staff?: StaffSession }, c: Conv, visibility: 'public' | 'internal') => {
      const req = h.http.post(`/api/conversations/${c.id}/messages`);
      if (auth.token) req.set('Authorization', `Bearer ${auth.token}`);
      if (auth.staff) req.set('Cookie', auth.staff.cookie).set('x-csrf-token', auth.staff.csrf);
      const res = await req.send({ clientMessageId: uuid(), body: `live ${visibility} ${uuid()}`, visibility });
      expect(res.status).toBe(201);
      return res.body.message.id as string;
    };
    sent.A = await sendAs({ token: fx.A!.ownerToken }, fx.A!, 'public');
    sent.noteA = await sendAs({ staff: staff.AG1 }, fx.A!, 'internal');
    sent.B = await sendAs({ token: fx.B!.ownerToken }, fx.B!, 'public');
    sent.G2 = await sendAs({ token: fx.G2!.ownerToken }, fx.G2!, 'public');
    sent.X = await sendAs({ token: fx.X!.ownerToken }, fx.X!, 'public');
    await sleep(500);

    const failures: string[] = [];
    for (const r of ROWS.filter((x) => x.action === 'subscribeLive')) {
      let got: Outcome;
      if (r.actor === 'DIS') got = disSocket.connected ? 'unexpected: still connected' : 401;
      else if (r.actor === 'ANON') got = (await socketFor('ANON')).refused ?? 'unexpected: anonymous socket connected';
      else got = heard[r.actor]!.some((m) => m.id === sent[r.resource]) ? 'allow' : 404;
      if (got !== r.expected) failures.push(`${r.actor.padEnd(4)} subscribeLive ${r.resource} [socket]: expected ${r.expected}, got ${got}`);
    }
    // A constituent's socket never carries an internal note of any conversation.
    for (const a of ['CA', 'CB', 'CX'] as const) {
      if (heard[a]!.some((m) => m.visibility === 'internal')) failures.push(`${a} heard an internal note`);
    }
    expect(failures).toEqual([]);
  });

  it("the second agency's admin sees none of our groups on the dashboard or in reports", async () => {
    const dash = await api('XADM', 'get', '/api/dashboard');
    expect(dash.status).toBe(200);
    const ours = [g.G1, g.G2, g.permits];
    expect((dash.body.groups as { id: string }[]).map((x) => x.id).filter((id) => ours.includes(id))).toEqual([]);
    const report = await api('XADM', 'get', '/api/reports?from=2026-01-01&to=2026-12-31');
    expect(report.status).toBe(200);
    expect((report.body.rows as { name: string }[]).map((x) => x.name)).not.toContain('Permits');
  });
});
