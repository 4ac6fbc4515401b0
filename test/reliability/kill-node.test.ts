import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { processPair } from './pair.js';
import { check, report, Traffic, printFault } from './traffic.js';

jest.setTimeout(180_000);

// F-1: two nodes behind a balancer carry live chats; one is killed without warning while messages fly.
describe('fault: a node is killed (SIGKILL) mid-conversation', () => {
  const pair = processPair({ balancer: true });
  let traffic: Traffic | undefined;
  afterAll(() => traffic?.close());

  it('clients of the killed node reconnect to the other and catch up: nothing acknowledged is lost, duplicated or reordered', async () => {
    const { a, b, lb } = pair;
    traffic = await Traffic.open({
      count: 16,
      constituentUrls: [lb.url],
      agentUrls: [lb.url],
      agents: ['agent@demo.gov', 'agent2@demo.gov', 'supervisor@demo.gov'],
    });
    traffic.start(10);
    await new Promise((r) => setTimeout(r, 3000));
    const before = traffic.ledger.length;
    await a.kill('SIGKILL');
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    await traffic.drain();
    await traffic.settle();
    const verdict = await check(pair.databaseUrl, traffic);
    printFault(
      report('SIGKILL one of two nodes under ~10 msg/s', verdict, {
        'sent before the kill': before,
        'clients that reconnected': traffic.reconnected(),
        'surviving node alive': b.alive,
        'seconds after the kill': Math.round((Date.now() - killedAt) / 1000),
      }),
    );
    expect(a.alive).toBe(false);
    expect(b.alive).toBe(true);
    expect(traffic.reconnected()).toBeGreaterThan(0);
    expect(verdict.unacked).toBe(0);
    expect(verdict.acked).toBeGreaterThan(before);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], disorder: [], undelivered: [], foreign: [] });
    expect((await fetch(`${b.url}/api/health`)).status).toBe(200);
  });
});
