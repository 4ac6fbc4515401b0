import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Ack, Message, SendMessageResult, SyncResult } from '@casebridge/shared';
import { backends, collect, nextEvent, sleep, startTestServer, uuid, type Harness } from '../support/harness.js';

describe.each(backends())('messaging on %s', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer(backend);
  }, 60_000);
  afterAll(async () => h?.close());

  it('a constituent and an agent exchange messages with acks, live, in seq order', async () => {
    const agentSession = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(agentSession);
    const { token } = await h.widgetSession();
    const created = nextEvent(agent, 'conversation:created');
    const conv = await h.startConversation(token, { message: 'My street light is out', clientMessageId: uuid() });
    const summary = await created;
    expect(summary.id).toBe(conv.id);
    expect(summary.caseReference).toMatch(/^SPR-\d{4}-\d{6}$/);
    expect(summary.status).toBe('queued');

    const constituent = await h.constituentSocket(token);
    const claim = await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    expect(claim).toMatchObject({ ok: true, data: { status: 'active', assigneeId: agentSession.me.id } });

    const toConstituent = nextEvent(constituent, 'message:created');
    const reply = await agent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'Thanks, I am logging it now.',
    });
    expect(reply.ok).toBe(true);
    const sent = (reply as { ok: true; data: SendMessageResult }).data;
    expect(sent.created).toBe(true);
    expect(sent.message.seq).toBe(2);
    const received = await toConstituent;
    expect(received).toMatchObject({ id: sent.message.id, seq: 2, body: 'Thanks, I am logging it now.' });
    expect(received.author).toEqual({ kind: 'agent', userId: agentSession.me.id, displayName: 'Avery Agent' });

    const toAgent = nextEvent(agent, 'message:created');
    const back = await constituent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'It is the one outside number 42.',
    });
    expect(back).toMatchObject({ ok: true, data: { created: true, message: { seq: 3 } } });
    expect(await toAgent).toMatchObject({ seq: 3, author: { kind: 'constituent' } });
  });

  it('a retried send returns the same message and is delivered once', async () => {
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const constituent = await h.constituentSocket(token);
    const agentSeen = collect(agent, 'message:created');
    const clientMessageId = uuid();
    const input = { conversationId: conv.id, clientMessageId, body: 'Is my permit ready?' };
    // Five copies at once, as a flaky network's retries would arrive.
    const acks = await Promise.all(Array.from({ length: 5 }, () => constituent.emitWithAck('message:send', input)));
    const ids = new Set(acks.map((a) => (a as { ok: true; data: SendMessageResult }).data.message.id));
    expect(acks.every((a) => a.ok)).toBe(true);
    expect(ids.size).toBe(1);
    expect(acks.filter((a) => (a as { ok: true; data: SendMessageResult }).data.created)).toHaveLength(1);
    // Over HTTP too: the retry answers 200 with the same message.
    const again = await h.http
      .post(`/api/conversations/${conv.id}/messages`)
      .set('Authorization', `Bearer ${token}`)
      .send({ clientMessageId, body: 'Is my permit ready?' });
    expect(again.status).toBe(200);
    expect(again.body.message.id).toBe([...ids][0]);
    await sleep(300);
    expect(agentSeen.filter((m) => m.conversationId === conv.id)).toHaveLength(1);
    const sync = await h.http.get(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`);
    expect(sync.body.messages).toHaveLength(1);
  });

  it('seq is gap-free under concurrent senders', async () => {
    const agentSession = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(agentSession);
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const constituent = await h.constituentSocket(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    const sends = Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? agent : constituent).emitWithAck('message:send', {
        conversationId: conv.id,
        clientMessageId: uuid(),
        body: `message ${i}`,
      }),
    );
    const acks = await Promise.all(sends);
    const seqs = acks.map((a) => (a as { ok: true; data: SendMessageResult }).data.message.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const sync = (await agent.emitWithAck('conversation:sync', { conversationId: conv.id, afterSeq: 0 })) as Ack<SyncResult>;
    expect(sync.ok && sync.data.messages.map((m) => m.seq)).toEqual(seqs);
  });

  it('internal notes never reach the constituent, live or on catch-up', async () => {
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const supervisor = await h.staffSocket(await h.login('supervisor@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const constituent = await h.constituentSocket(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    const constituentSeen = collect(constituent, 'message:created');
    const supervisorSees = nextEvent(supervisor, 'message:created', 2000, (m) => m.conversationId === conv.id);
    const note = await agent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'Caller was rude last time, be patient',
      visibility: 'internal',
    });
    expect(note).toMatchObject({ ok: true, data: { message: { visibility: 'internal' } } });
    expect(await supervisorSees).toMatchObject({ visibility: 'internal' });
    const publicReply = nextEvent(constituent, 'message:created');
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Hello!' });
    expect((await publicReply).body).toBe('Hello!');
    await sleep(200);
    expect(constituentSeen.map((m) => m.visibility)).toEqual(['public']);

    const sync = (await constituent.emitWithAck('conversation:sync', { conversationId: conv.id, afterSeq: 0 })) as Ack<SyncResult>;
    expect(sync.ok && sync.data.messages.map((m) => m.body)).toEqual(['Hello!']);
    const httpSync = await h.http.get(`/api/conversations/${conv.id}/messages`).set('Authorization', `Bearer ${token}`);
    expect(httpSync.body.messages.map((m: Message) => m.visibility)).toEqual(['public']);

    // A constituent cannot write a note.
    const forged = await constituent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'sneaky',
      visibility: 'internal',
    });
    expect(forged).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('a reconnecting client receives exactly what it missed, in order', async () => {
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    let constituent = await h.constituentSocket(token);
    const first = await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'one' });
    await nextEvent(constituent, 'message:created').catch(() => undefined);
    const lastSeq = (first as { ok: true; data: SendMessageResult }).data.message.seq;
    constituent.close(); // the network drops

    for (const body of ['two', 'three', 'four']) {
      await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body });
    }
    constituent = await h.constituentSocket(token);
    const sync = (await constituent.emitWithAck('conversation:sync', { conversationId: conv.id, afterSeq: lastSeq })) as Ack<SyncResult>;
    expect(sync.ok).toBe(true);
    if (!sync.ok) return;
    expect(sync.data.messages.map((m) => m.body)).toEqual(['two', 'three', 'four']);
    expect(sync.data.messages.map((m) => m.seq)).toEqual([lastSeq + 1, lastSeq + 2, lastSeq + 3]);
    expect(sync.data.hasMore).toBe(false);

    // Paging: a small limit says there is more.
    const page = (await constituent.emitWithAck('conversation:sync', { conversationId: conv.id, afterSeq: 0, limit: 2 })) as Ack<SyncResult>;
    expect(page.ok && page.data).toMatchObject({ hasMore: true, lastSeq: 2 });
  });

  it('two agents claiming at once: exactly one wins', async () => {
    const a1 = await h.staffSocket(await h.login('agent@demo.gov'));
    const a2 = await h.staffSocket(await h.login('agent2@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const [r1, r2] = await Promise.all([
      a1.emitWithAck('conversation:claim', { conversationId: conv.id }),
      a2.emitWithAck('conversation:claim', { conversationId: conv.id }),
    ]);
    const results = [r1, r2];
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([
      expect.objectContaining({ ok: false, error: expect.objectContaining({ code: 'CONFLICT' }) }),
    ]);
  });

  it('starting a chat twice at once yields one open conversation linked to one case', async () => {
    const { token } = await h.widgetSession();
    const starts = await Promise.all(Array.from({ length: 5 }, () => h.startConversation(token)));
    expect(new Set(starts.map((s) => s.id)).size).toBe(1);
    expect(new Set(starts.map((s) => s.caseReference)).size).toBe(1);
  });

  it('typing reaches the other side only', async () => {
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const constituent = await h.constituentSocket(token);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    const seen = nextEvent(constituent, 'typing:changed');
    expect(await agent.emitWithAck('typing:set', { conversationId: conv.id, isTyping: true })).toEqual({ ok: true, data: null });
    expect(await seen).toEqual({ conversationId: conv.id, by: 'agent', isTyping: true });
    const staffSeen = nextEvent(agent, 'typing:changed');
    await constituent.emitWithAck('typing:set', { conversationId: conv.id, isTyping: true });
    expect(await staffSeen).toEqual({ conversationId: conv.id, by: 'constituent', isTyping: true });
  });

  it('ending a conversation tells the constituent and refuses further public messages', async () => {
    const agent = await h.staffSocket(await h.login('agent@demo.gov'));
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token);
    const constituent = await h.constituentSocket(token);
    const status = nextEvent(constituent, 'conversation:status', 2000, (s) => s.status === 'ended');
    expect(await constituent.emitWithAck('conversation:end', { conversationId: conv.id })).toMatchObject({ ok: true });
    await status;
    const late = await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'hello?' });
    expect(late).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    // Staff can still add a wrap-up note.
    await agent.emitWithAck('conversation:sync', { conversationId: conv.id, afterSeq: 0 });
    const note = await agent.emitWithAck('message:send', {
      conversationId: conv.id,
      clientMessageId: uuid(),
      body: 'wrap-up',
      visibility: 'internal',
    });
    expect(note.ok).toBe(true);
    // A new chat afterwards is a new conversation.
    const next = await h.startConversation(token);
    expect(next.id).not.toBe(conv.id);
  });
});
