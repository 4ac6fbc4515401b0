// C0: a machine score to normalise absolute numbers between machines (PERFORMANCE.md §6.2).
import { createServer, createConnection } from 'node:net';
import { Samples } from './stats.mjs';

export async function calibrate(ms = 1000) {
  // Node TCP ping-pong on loopback, same process.
  const srv = createServer((s) => s.on('data', (d) => s.write(d)));
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const c = createConnection({ port: srv.address().port, host: '127.0.0.1' });
  c.setNoDelay(true);
  await new Promise((r) => c.once('connect', r));
  const rtt = new Samples();
  const end = performance.now() + ms;
  await new Promise((resolve) => {
    let t0 = 0;
    const ping = () => {
      if (performance.now() > end) return resolve();
      t0 = performance.now();
      c.write('x');
    };
    c.on('data', () => {
      rtt.add((performance.now() - t0) * 1000);
      ping();
    });
    ping();
  });
  c.destroy();
  srv.close();
  // Fixed CPU micro-loop: 200 k JSON.stringify of a ≈ 300-byte message.
  const msg = {
    id: '5b0c7f0e-8a8e-4a59-9a57-0f4a8f3c2d11', conversationId: '0d5b3c1e-6a3f-4f7b-8d7e-2c1b0a9f8e7d', seq: 42,
    author: { kind: 'constituent', constituentId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d' }, visibility: 'public',
    body: 'Hello, I would like to ask about the status of my permit application. Thanks', createdAt: new Date(0).toISOString(),
  };
  const t = performance.now();
  let n = 0;
  for (let i = 0; i < 200_000; i++) n += JSON.stringify(msg).length;
  const jsonMs = performance.now() - t;
  const s = rtt.summary();
  return { tcpRttUs: { p50: s.p50, p99: s.p99, n: s.n }, json200kMs: Math.round(jsonMs), bytes: n / 200_000 };
}
