import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type Harness } from '../support/harness.js';

describe('fixed paths', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTestServer('pglite');
  }, 60_000);
  afterAll(async () => h?.close());

  it('GET /api/health says ok and names the database', async () => {
    const res = await h.http.get('/api/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', database: 'pglite', realtime: 'single-node' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('voice and SMS webhooks without Twilio set up are refused; other Twilio paths do not exist', async () => {
    expect((await h.http.post('/webhooks/twilio/voice').type('form').send({ Digits: '1' })).status).toBe(403);
    expect((await h.http.post('/webhooks/twilio/sms').type('form').send({ Body: 'hi' })).status).toBe(403);
    const res = await h.http.post('/webhooks/twilio/fax').type('form').send({ Digits: '1' });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('API responses carry a locked-down CSP and security headers', async () => {
    const res = await h.http.get('/api/health');
    expect(res.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
