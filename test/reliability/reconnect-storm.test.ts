import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { io as ioc } from 'socket.io-client';
import { PROTOCOL_VERSION } from '@casebridge/shared';
import { type ClientSocket } from '../support/harness.js';
import { processPair } from './pair.js';
import { widgetSession, printFault } from './traffic.js';

jest.setTimeout(300_000);

const SOCKETS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// F-10: a thousand widgets lose their connections at the same moment (a proxy restart) and all come back.
describe('fault: 1,000 widget sockets dropped at once', () => {
  const pair = processPair({ balancer: true });
  const sockets: ClientSocket[] = [];
  afterAll(() => sockets.forEach((s) => s.close()));

  it('all reconnect within 60 s with jittered backoff; no node stays pegged; both keep serving', async () => {
    const { a, b, lb } = pair;
    // Sessions come from many addresses (as real visitors do), through the trusted proxy header.
    const tokens: string[] = [];
    for (let i = 0; i < SOCKETS; i += 25) {
      tokens.push(...(await Promise.all(Array.from({ length: Math.min(25, SOCKETS - i) }, (_, j) => widgetSession(lb.url, `10.7.${Math.floor((i + j) / 250)}.${((i + j) % 250) + 1}`)))));
    }
    let reconnected = 0;
    await Promise.all(
      tokens.map(
        (token, i) =>
          new Promise<void>((resolve, reject) => {
            // The widget's own reconnection settings: 1 s doubling to 5 s, ±50 % jitter.
            const s: ClientSocket = ioc(lb.url, {
              transports: ['websocket'],
              forceNew: true,
              reconnectionDelay: 1000,
              reconnectionDelayMax: 5000,
              randomizationFactor: 0.5,
              auth: { protocolVersion: PROTOCOL_VERSION, token },
              extraHeaders: { 'x-forwarded-for': `10.7.${Math.floor(i / 250)}.${(i % 250) + 1}` },
            });
            sockets.push(s);
            s.once('connect', () => resolve());
            s.once('connect_error', reject);
            s.io.on('reconnect', () => reconnected++);
          }),
      ),
    );
    expect(sockets.filter((s) => s.connected)).toHaveLength(SOCKETS);

    const pids = [a.pid, b.pid];
    const cpu = [cpuSeconds(a.pid), cpuSeconds(b.pid)];
    const busy: number[] = []; // per second: the busier node's CPU share
    const sampler = setInterval(() => {
      const now = [cpuSeconds(a.pid), cpuSeconds(b.pid)];
      busy.push(Math.max(now[0]! - cpu[0]!, now[1]! - cpu[1]!));
      cpu.splice(0, 2, ...now);
    }, 1000);
    const dropped = lb.dropAll();
    const start = Date.now();
    // Every socket notices the cut, then comes back on its own.
    while ((reconnected < SOCKETS || sockets.some((s) => !s.connected)) && Date.now() - start < 60_000) await sleep(200);
    const allBackMs = Date.now() - start;
    // Health answers promptly once the storm has passed.
    const healthMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = Date.now();
      for (const n of [a, b]) await fetch(`${n.url}/api/health`);
      healthMs.push((Date.now() - t) / 2);
    }
    clearInterval(sampler);
    let longestPegged = 0;
    let run = 0;
    for (const share of busy) {
      run = share > 0.9 ? run + 1 : 0;
      longestPegged = Math.max(longestPegged, run);
    }
    printFault(
      [
        `fault: ${SOCKETS} widget sockets cut at once (two nodes behind a balancer)`,
        `  connections cut: ${dropped}`,
        `  all ${SOCKETS} connected again after ${allBackMs} ms (${reconnected} reconnect events)`,
        `  busiest node CPU per second: ${busy.map((x) => `${Math.round(x * 100)}%`).join(' ')}`,
        `  longest run above 90 % CPU: ${longestPegged} s`,
        `  health latency after: max ${Math.max(...healthMs)} ms`,
        `  node PIDs unchanged: ${a.pid === pids[0] && b.pid === pids[1]}`,
      ].join('\n'),
    );
    expect(sockets.filter((s) => s.connected)).toHaveLength(SOCKETS);
    expect(allBackMs).toBeLessThanOrEqual(60_000);
    expect(reconnected).toBeGreaterThanOrEqual(SOCKETS);
    expect(longestPegged).toBeLessThanOrEqual(30);
    expect(Math.max(...healthMs)).toBeLessThan(500);
    expect([a.pid, b.pid]).toEqual(pids);
    expect(a.alive && b.alive).toBe(true);
  });
});
