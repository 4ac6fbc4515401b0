import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { processPair } from './pair.js';
import { check, report, Traffic, printFault } from './traffic.js';

jest.setTimeout(240_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// F-6: the database restarts (fast shutdown, about 10 s down) while two nodes carry live chats.
describe('fault: PostgreSQL restarts under traffic', () => {
  const pair = processPair({ privatePostgres: true });
  let traffic: Traffic | undefined;
  afterAll(() => traffic?.close());

  it('sends during the outage get a retryable error, never a false success; retries land once after it returns', async () => {
    const { a, b, pg } = pair;
    traffic = await Traffic.open({
      count: 10,
      constituentUrls: [a.url, b.url],
      agentUrls: [b.url, a.url],
      agents: ['agent@demo.gov', 'agent2@demo.gov'],
    });
    traffic.start(8);
    await sleep(2000);
    const pids = [a.pid, b.pid];
    await pg.stop();
    const down = Date.now();
    await sleep(10_000);
    const health = await fetch(`${a.url}/api/health`).then((r) => r.status);
    await pg.start();
    const downFor = Date.now() - down;
    await sleep(3000);
    await traffic.drain(45_000);
    await traffic.settle();
    const verdict = await check(pg.url, traffic);
    const refused = traffic.ledger.filter((e) => e.errors.some((c) => c !== 'TIMEOUT'));
    const codes = [...new Set(refused.flatMap((e) => e.errors))];
    printFault(
      report('PostgreSQL down ~10 s (fast shutdown, restart) under ~8 msg/s', verdict, {
        'seconds down': Math.round(downFor / 1000),
        'sends refused during the outage, then retried': refused.length,
        'error codes seen': codes,
        'health while down': health,
        'node PIDs unchanged': a.pid === pids[0] && b.pid === pids[1] && a.alive && b.alive,
      }),
    );
    expect([a.pid, b.pid]).toEqual(pids);
    expect(a.alive && b.alive).toBe(true);
    expect(health).toBe(503);
    // Sends were refused while it was down, and only with the retryable code (or no answer at all).
    expect(refused.length).toBeGreaterThan(0);
    expect(codes.filter((c) => c !== 'UNAVAILABLE' && c !== 'TIMEOUT')).toEqual([]);
    expect(verdict.unacked).toBe(0);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], disorder: [], undelivered: [], foreign: [] });
    for (const n of [a, b]) expect((await fetch(`${n.url}/api/health`)).status).toBe(200);
  });
});
