import { describe, expect, it, jest } from '@jest/globals';
import { processPair } from './pair.js';
import { check, report, Traffic, printFault } from './traffic.js';

// The five-minute drop is real time: this file runs for about seven minutes, beside the others.
jest.setTimeout(600_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// F-8: constituents lose their network (their tab stays open) while agents on another line keep answering.
describe('fault: constituents offline for 10 s and for 5 min', () => {
  // The constituents' network goes through the balancer; the agents connect to node B directly.
  const pair = processPair({ balancer: true });

  for (const [label, offlineMs, ipBase] of [
    ['10 s', 10_000, 0],
    ['5 min', 300_000, 100],
  ] as const) {
    it(`offline ${label}: on reconnect every missed message is there, in order, within 3 s; nothing typed offline is lost or doubled`, async () => {
      const { b, lb: net } = pair;
      const traffic = await Traffic.open({
        count: 6,
        constituentUrls: [net.url],
        agentUrls: [b.url],
        agents: ['agent@demo.gov', 'agent2@demo.gov'],
        ipBase,
      });
      try {
        traffic.start(4);
        await sleep(2000);
        const dropped = net.block(offlineMs);
        // Offline, each constituent types two messages (they wait in the client, as in our widget's outbox).
        traffic.quiet.add('constituent');
        for (const chat of traffic.chats) for (let i = 0; i < 2; i++) traffic.send(chat, 'constituent', `typed offline ${i}`);
        await sleep(offlineMs);
        traffic.quiet.delete('constituent');
        // Back online: time until every constituent holds every public message of its conversation.
        const back = Date.now();
        let caughtUpMs: number | undefined;
        while (caughtUpMs === undefined && Date.now() - back < 30_000) {
          const v = await check(pair.databaseUrl, traffic);
          if (!v.undelivered.some((u) => u.startsWith('constituent'))) caughtUpMs = Date.now() - back;
          else await sleep(200);
        }
        await sleep(2000);
        await traffic.drain();
        await traffic.settle();
        const verdict = await check(pair.databaseUrl, traffic);
        const typedOffline = traffic.ledger.filter((e) => e.body.startsWith('typed offline') && e.seqs.length).length;
        printFault(
          report(`constituents offline ${label} (network cut, tab open) under ~4 msg/s`, verdict, {
            'connections cut': dropped,
            'constituents that reconnected': traffic.chats.filter((c) => c.constituent.reconnects > 0).length,
            'caught up after reconnect (ms)': caughtUpMs ?? 'not within 30 s',
            'typed offline, delivered after': `${typedOffline} of ${traffic.chats.length * 2}`,
          }),
        );
        expect(traffic.chats.every((c) => c.constituent.reconnects > 0)).toBe(true);
        expect(caughtUpMs).toBeDefined();
        expect(caughtUpMs!).toBeLessThanOrEqual(3000 + 2000 /* reconnect backoff at most 2 s */);
        expect(typedOffline).toBe(traffic.chats.length * 2);
        expect(verdict.unacked).toBe(0);
        expect(verdict).toMatchObject({ lost: [], duplicated: [], disorder: [], undelivered: [], foreign: [] });
      } finally {
        traffic.close();
      }
    });
  }
});
