import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MAX_ATTACHMENT_BYTES, type AttachmentRef } from '@casebridge/shared';
import { backends, nextEvent, startTestServer, uuid, type Harness } from '../support/harness.js';

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('rest-of-a-png')]);
const PDF = Buffer.from('%PDF-1.7\n%fake but typed by its header\n');

describe.each(backends())('attachments on %s', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer(backend);
  }, 60_000);
  afterAll(async () => h?.close());

  const upload = (conv: string, auth: Record<string, string>, bytes: Buffer, name = 'photo.png') => {
    const req = h.http.post(`/api/conversations/${conv}/attachments`).set('Content-Type', 'application/octet-stream');
    for (const [k, v] of Object.entries(auth)) req.set(k, v);
    return req.set('x-filename', encodeURIComponent(name)).send(bytes);
  };

  it('a constituent attaches a photo; the agent gets it with the message and can download exactly those bytes', async () => {
    const agentSession = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(agentSession);
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    const bearer = { Authorization: `Bearer ${token}` };
    const up = await upload(conv.id, bearer, PNG, '../../etc/pothole "big".png');
    expect(up.status).toBe(201);
    const ref = up.body as AttachmentRef;
    expect(ref).toMatchObject({ contentType: 'image/png', size: PNG.length, filename: 'pothole big.png' });

    const constituent = await h.constituentSocket(token);
    const seen = nextEvent(agent, 'message:created', 2000, (m) => m.conversationId === conv.id);
    const ack = await constituent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: '',
      attachmentIds: [ref.id],
    });
    expect(ack).toMatchObject({ ok: true, data: { message: { attachments: [ref] } } });
    expect((await seen).attachments).toEqual([ref]);

    const dl = await h.http
      .get(`/api/attachments/${ref.id}`)
      .set('Cookie', agentSession.cookie)
      .buffer(true)
      .parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      });
    expect(dl.status).toBe(200);
    expect(Buffer.compare(dl.body as Buffer, PNG)).toBe(0);
    expect(dl.headers['content-type']).toBe('image/png');
    expect(dl.headers['content-disposition']).toMatch(/^attachment; filename="pothole big.png"/);
    expect(dl.headers['x-content-type-options']).toBe('nosniff');
    expect(dl.headers['content-security-policy']).toMatch(/sandbox/);

    // The catch-up carries the files too.
    const sync = await h.http.get(`/api/conversations/${conv.id}/messages`).set(bearer);
    expect(sync.body.messages.at(-1).attachments).toEqual([ref]);
    // Someone else cannot fetch it.
    const other = (await h.widgetSession()).token;
    expect((await h.http.get(`/api/attachments/${ref.id}`).set('Authorization', `Bearer ${other}`)).status).toBe(404);
  });

  it('refuses files by their bytes, not their names, and stores nothing', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const bearer = { Authorization: `Bearer ${token}` };
    const cases: [Buffer, string][] = [
      [Buffer.from('MZ\x90\x00 this is an exe'), 'invoice.png'],
      [Buffer.from('<html><script>alert(1)</script></html>'), 'page.pdf'],
      [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'), 'logo.svg'],
    ];
    for (const [bytes, name] of cases) {
      const res = await upload(conv.id, bearer, bytes, name);
      expect({ name, status: res.status, code: res.body.error?.code, path: res.body.error?.issues?.[0]?.path }).toEqual({
        name,
        status: 400,
        code: 'INVALID_PAYLOAD',
        path: ['file'],
      });
    }
    expect((await upload(conv.id, bearer, Buffer.alloc(0))).status).toBe(400);
    const tooBig = await upload(conv.id, bearer, Buffer.concat([PDF, Buffer.alloc(MAX_ATTACHMENT_BYTES)]), 'big.pdf');
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await upload(conv.id, bearer, PDF, 'form.pdf')).body).toMatchObject({ contentType: 'application/pdf', filename: 'form.pdf' });
  });

  it('a file on an internal note stays with staff; unsent files and other people’s files cannot be used', async () => {
    const agentSession = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(agentSession);
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    const staffAuth = { Cookie: agentSession.cookie, 'x-csrf-token': agentSession.csrf };
    const staffFile = (await upload(conv.id, staffAuth, PDF, 'internal-memo.pdf')).body as AttachmentRef;
    const bearer = { Authorization: `Bearer ${token}` };
    // Not sent yet: the constituent cannot see it, and cannot send it as theirs.
    expect((await h.http.get(`/api/attachments/${staffFile.id}`).set(bearer)).status).toBe(404);
    const constituent = await h.constituentSocket(token);
    expect(
      await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'x', attachmentIds: [staffFile.id] }),
    ).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD', issues: [{ path: ['attachmentIds'] }] } });
    await agent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'memo for the team',
      visibility: 'internal',
      attachmentIds: [staffFile.id],
    });
    expect((await h.http.get(`/api/attachments/${staffFile.id}`).set(bearer)).status).toBe(404);
    expect((await h.http.get(`/api/attachments/${staffFile.id}`).set('Cookie', agentSession.cookie)).status).toBe(200);
    // Uploading needs the CSRF token like any other change.
    expect((await upload(conv.id, { Cookie: agentSession.cookie }, PDF)).status).toBe(403);
  });
});
