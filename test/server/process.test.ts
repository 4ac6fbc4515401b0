import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { freePort, spawnServer, waitForHealth, type ServerProcess } from '../support/process.js';

describe('the server process (what npm start runs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cb-proc-'));
  const running: ServerProcess[] = [];
  afterAll(() => {
    for (const p of running) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts on the embedded default, prints URLs and demo logins, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const proc = spawnServer({ PORT: String(port), DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'info' });
    running.push(proc);
    await waitForHealth(`http://127.0.0.1:${port}`, proc);
    const out = proc.output();
    expect(out).toContain(`Agent console     http://localhost:${port}/console`);
    expect(out).toMatch(/agent@demo\.gov\s+agent/);
    const password = /password: (\S+)\s+\(random for this start/.exec(out)?.[1];
    expect(password).toBeTruthy();
    expect(existsSync(join(dir, 'data', 'casebridge.lock'))).toBe(true);

    // The printed password works.
    const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'agent@demo.gov', password }),
    });
    expect(login.status).toBe(200);

    // A second process on the same data directory refuses to start, saying why.
    const second = spawnServer({ PORT: String(await freePort()), DATA_DIR: join(dir, 'data') });
    running.push(second);
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(/in use by another CaseBridge process/);

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(existsSync(join(dir, 'data', 'casebridge.lock'))).toBe(false);
    // No personal data or secrets in the logs: not the password, not the email.
    expect(out.split('\n').filter((l) => l.startsWith('{')).join('\n')).not.toContain('agent@demo.gov');
  }, 90_000);

  it('refuses a bad configuration, listing every problem', async () => {
    const proc = spawnServer({ PORT: 'not-a-port', REDIS_URL: 'redis://127.0.0.1:6379', DATA_DIR: join(dir, 'x') });
    running.push(proc);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toMatch(/Invalid configuration/);
    expect(proc.output()).toMatch(/PORT/);
  }, 30_000);
});
