import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sleep, startTestServer, uuid, type Harness } from '../support/harness.js';

// Canary personal data goes through every path; none of it may reach the logs (RELIABILITY.md §5.7).
describe('logs carry no personal data or secrets', () => {
  const lines: string[] = [];
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite', { logSink: (l) => lines.push(l) });
  }, 60_000);
  afterAll(async () => h?.close());

  it('a full chat with canary name, email, phone and message bodies leaves no trace of them in the logs', async () => {
    const canary = {
      name: 'Zebulon Canarysson',
      email: 'zebulon.canary@example.org',
      phone: '+1 555 010 9999',
      body: 'my SSN is canary-123-45-6789',
    };
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, {
      name: canary.name,
      email: canary.email,
      phone: canary.phone,
      message: canary.body,
      clientMessageId: uuid(),
    });
    const staff = await h.login('agent@demo.gov');
    const agent = await h.staffSocket(staff);
    await agent.emitWithAck('conversation:claim', { conversationId: conv.id });
    await agent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: `reply to ${canary.name}` });
    const constituent = await h.constituentSocket(token);
    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: canary.body });
    await h.http.post('/api/auth/login').send({ email: 'agent@demo.gov', password: 'wrong-canary-password' });
    await h.http.get(`/api/conversations/${conv.id}/messages?afterSeq=0`).set('Authorization', `Bearer ${token}`);
    constituent.close();
    await sleep(200);

    const all = lines.join('\n');
    expect(lines.length).toBeGreaterThan(5); // the logs really were captured
    for (const value of [...Object.values(canary), 'wrong-canary-password', token, staff.cookie.split('=')[1]!, 'agent@demo.gov']) {
      expect({ value, found: all.includes(value) }).toEqual({ value, found: false });
    }
  });
});
