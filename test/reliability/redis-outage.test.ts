import { afterAll, describe, expect, it, jest } from '@jest/globals';
import type { Message } from '@casebridge/shared';
import { processPair } from './pair.js';
import { check, report, Traffic, type Chat, printFault, widgetSession } from './traffic.js';

jest.setTimeout(240_000);

const OUTAGE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with how long it took until `chat`'s agent received `body` live (no catch-up), or rejects. */
function liveArrival(chat: Chat, body: string, ms: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      chat.agent.socket.off('message:created', on);
      reject(new Error(`"${body}" did not arrive live within ${ms} ms`));
    }, ms);
    const on = (m: Message) => {
      if (m.body !== body) return;
      clearTimeout(timer);
      chat.agent.socket.off('message:created', on);
      resolve(Date.now() - started);
    };
    chat.agent.socket.on('message:created', on);
  });
}

/** What a constituent opening the chat on `url` is told (is live chat staffed?), and how long it took to answer. */
async function availability(url: string): Promise<{ open: boolean; ms: number }> {
  const token = await widgetSession(url, '203.0.113.77');
  const started = Date.now();
  const res = await fetch(`${url}/api/widget/availability`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { open: boolean };
  return { open: body.open, ms: Date.now() - started };
}

// F-4: Redis (the fan-out between nodes) stops for 30 s and comes back empty.
describe('fault: Redis stops for 30 s and starts again', () => {
  // A database of its own too: this test times live delivery (5 s), and the shared PostgreSQL also serves the
  // other tiers running beside it in CI, whose database creations and drops may hold its commits up.
  const pair = processPair({ privateRedis: true, privatePostgres: true });
  let traffic: Traffic | undefined;
  afterAll(() => traffic?.close());

  it('no node crashes; same-node chat goes on; cross-node delivery is back within 5 s of Redis and gaps are filled', async () => {
    const { a, b, redis } = pair;
    // Constituents on node A; even chats have their agent on node B (cross-node), odd ones on node A (same node).
    traffic = await Traffic.open({
      count: 12,
      constituentUrls: [a.url],
      agentUrls: [b.url, a.url],
      agents: ['agent@demo.gov', 'agent2@demo.gov'],
    });
    const cross = traffic.chats.filter((c) => c.agentUrl === b.url);
    const same = traffic.chats.filter((c) => c.agentUrl === a.url);
    traffic.start(8);
    await sleep(2000);
    const pids = [a.pid, b.pid];
    const staffedBefore = await availability(a.url);

    await redis.stop();
    await sleep(2000);
    // While Redis is down: a constituent and an agent on the same node still talk live.
    const sameProbe = `same-node probe ${Date.now()}`;
    const sameArrival = liveArrival(same[0]!, sameProbe, 5000);
    const sent = traffic.send(same[0]!, 'constituent', sameProbe);
    const sameMs = await sameArrival.catch((err: Error) => {
      // Say which side it stopped on: never acknowledged (the sender's node) or acknowledged and not fanned out.
      const { constituent, agent } = same[0]!;
      throw new Error(
        `${err.message}; acknowledged seq ${sent.seqs.join(',') || 'none'}, errors [${sent.errors.join(',')}], ` +
          `constituent connected ${constituent.socket.connected}, agent connected ${agent.socket.connected}`,
      );
    });
    // A constituent opening the chat meanwhile is answered at once from this node's own agents (one of them is on
    // node A), not after Redis returns.
    const staffedDuring = await availability(a.url);
    await sleep(OUTAGE_MS - 2000 - staffedDuring.ms);

    await redis.start();
    const back = Date.now();
    // Cross-node: a message sent after Redis returns reaches the agent on the other node live within 5 s.
    let crossMs: number | undefined;
    for (let i = 0; crossMs === undefined && Date.now() - back < 5000; i++) {
      const probe = `cross-node probe ${i}`;
      const arrival = liveArrival(cross[0]!, probe, 1000);
      traffic.send(cross[0]!, 'constituent', probe);
      crossMs = await arrival.then(() => Date.now() - back).catch(() => undefined);
    }
    await sleep(2000);
    await traffic.drain();
    await traffic.settle();
    const verdict = await check(pair.databaseUrl, traffic);
    printFault(
      report('Redis down for 30 s under ~8 msg/s, then back (empty)', verdict, {
        'same-node live delivery during the outage (ms)': sameMs,
        'widget availability during the outage (ms)': staffedDuring.ms,
        'cross-node live delivery resumed after Redis returned (ms)': crossMs ?? 'not within 5 s',
        'node PIDs unchanged': a.pid === pids[0] && b.pid === pids[1] && a.alive && b.alive,
      }),
    );
    expect(a.alive && b.alive).toBe(true);
    expect([a.pid, b.pid]).toEqual(pids);
    expect(sameMs).toBeLessThan(5000);
    expect(staffedBefore.open).toBe(true);
    expect(staffedDuring).toMatchObject({ open: true });
    expect(staffedDuring.ms).toBeLessThan(2000);
    expect(crossMs).toBeDefined();
    expect(crossMs!).toBeLessThanOrEqual(5000);
    expect(verdict.unacked).toBe(0);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], disorder: [], undelivered: [], foreign: [] });
    for (const n of [a, b]) expect((await fetch(`${n.url}/api/health`)).status).toBe(200);
  });
});
