import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { backends, startTestServer, uuid, type ClientSocket, type Harness } from '../support/harness.js';
import { rowsOf } from '../../server/src/db/client.js';

jest.setTimeout(60_000);

// Messages arriving together are committed together; the promises of one message each still hold.
describe.each(backends())('group commit of messages on %s', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer(backend, { limits: { messagesPerSession: { points: 10_000, duration: 60 } } });
  }, 60_000);
  afterAll(async () => h?.close());

  it('a burst over several conversations, with retries inside the burst: each message once, seqs gap-free', async () => {
    const chats: { id: string; socket: ClientSocket }[] = [];
    for (let i = 0; i < 5; i++) {
      const { token } = await h.widgetSession();
      const conv = await h.startConversation(token, { name: `Burst ${i}` });
      chats.push({ id: conv.id, socket: await h.constituentSocket(token) });
    }
    // 200 sends at once: 40 per conversation, every fifth one sent three times with the same key.
    const sends: Promise<{ key: string; chat: number; seq: number; id: string }>[] = [];
    for (let n = 0; n < 40; n++) {
      chats.forEach((c, chat) => {
        const key = uuid();
        const copies = n % 5 === 0 ? 3 : 1;
        for (let k = 0; k < copies; k++) {
          sends.push(
            c.socket.emitWithAck('message:send', { conversationId: c.id, clientMessageId: key, body: `m${n}` }).then((r) => {
              if (!r.ok) throw new Error(JSON.stringify(r.error));
              return { key, chat, seq: r.data.message.seq, id: r.data.message.id };
            }),
          );
        }
      });
    }
    const acks = await Promise.all(sends);
    // Every copy of one key was answered with the same stored message.
    const byKey = new Map<string, Set<string>>();
    for (const a of acks) byKey.set(a.key, (byKey.get(a.key) ?? new Set()).add(`${a.id}@${a.seq}`));
    expect([...byKey.values()].every((s) => s.size === 1)).toBe(true);
    expect(byKey.size).toBe(200);
    for (const [i, c] of chats.entries()) {
      const rows = rowsOf<{ seq: number; body: string }>(
        await h.server.database.db.execute(sql`select seq, body from messages where conversation_id = ${c.id} and author_kind = 'constituent' order by seq`),
      );
      // 40 messages (the conversation may start with a first message of its own: seqs run on from there).
      expect(rows).toHaveLength(40);
      const seqs = rows.map((r) => r.seq);
      expect(seqs).toEqual(seqs.map((_, k) => seqs[0]! + k));
      // Sent without waiting for acks, they may commit in any order; each is there once, and the seq order is
      // the one order every reader sees.
      expect(rows.map((r) => r.body).sort()).toEqual(Array.from({ length: 40 }, (_, n) => `m${n}`).sort());
      const acked = acks.filter((a) => a.chat === i).map((a) => a.seq);
      expect(new Set(acked).size).toBe(40);
    }
    for (const c of chats) c.socket.close();
  });

  it('one message to a conversation that cannot take it does not fail the others in its batch', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Neighbour' });
    const socket = await h.constituentSocket(token);
    const { token: t2 } = await h.widgetSession();
    const ended = await h.startConversation(t2, { name: 'Ends' });
    const s2 = await h.constituentSocket(t2);
    expect(await s2.emitWithAck('conversation:end', { conversationId: ended.id })).toMatchObject({ ok: true });
    const results = await Promise.all([
      ...Array.from({ length: 10 }, (_, n) => socket.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: `ok ${n}` })),
      s2.emitWithAck('message:send', { conversationId: ended.id, clientMessageId: uuid(), body: 'too late' }),
    ]);
    expect(results.slice(0, 10).every((r) => r.ok)).toBe(true);
    expect(results[10]).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    socket.close();
    s2.close();
  });
});
