import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../server/src/config.js';

describe('configuration', () => {
  it('runs with no configuration at all: PGlite in ./data, demo mode, port 3000', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, dataDir: './data', demoMode: true, publicBaseUrl: 'http://localhost:3000' });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.sessionIdleMs).toBe(30 * 60_000);
  });

  it('lists every problem at once', () => {
    let message = '';
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/Invalid configuration/);
    expect(message).toMatch(/PORT/);
    expect(message).toMatch(/DATABASE_URL/);
    expect(message).toMatch(/LOG_LEVEL/);
  });

  it('refuses several nodes (REDIS_URL) on PGlite', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/PGlite serves one process only/);
  });

  it('needs a session secret outside demo mode and never seeds a production database silently', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://db/cb' })).toThrow(/SESSION_SECRET is required/);
    const prod = loadConfig({ DATABASE_URL: 'postgres://db/cb', SESSION_SECRET: 'x'.repeat(32) });
    expect(prod.demoMode).toBe(false);
    expect(() =>
      loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/cb', DEMO_MODE: 'true', SESSION_SECRET: 'x'.repeat(32) }),
    ).toThrow(/would seed demo users/);
  });

  it('treats empty variables as unset and trims a trailing slash from the public URL', () => {
    const c = loadConfig({ DATABASE_URL: '', REDIS_URL: '', PUBLIC_BASE_URL: 'https://help.city.gov/' });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.publicBaseUrl).toBe('https://help.city.gov');
  });
});
