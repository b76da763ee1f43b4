import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { adminJson } from '../support/tokens.js';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('GET /health (liveness)', () => {
  it('reports process vitals in Terminus format without touching the database', async () => {
    const res = await fetch(`${t.url}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as {
      status: string;
      info: Record<string, any>;
      error: object;
      details: Record<string, any>;
    };
    expect(body.status).toBe('ok');
    expect(body.error).toEqual({});
    expect(Object.keys(body.details)).toEqual(['process']);
    const p = body.details['process'];
    expect(p).toMatchObject({
      status: 'up',
      pid: expect.any(Number),
      uptimeSeconds: expect.any(Number),
      cpuPercent: expect.any(Number),
    });
    expect(p.memory.rssBytes).toBeGreaterThan(0);
    expect(p.eventLoopDelayMs).toEqual({ p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) });
  });
});

describe('GET /ready (readiness)', () => {
  it('pings the database', async () => {
    const res = await fetch(`${t.url}/ready`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; details: Record<string, any> };
    expect(body.status).toBe('ok');
    expect(body.details['database']).toMatchObject({ status: 'up', mode: t.config.database.mode });
    expect(body.details['lifecycle']).toMatchObject({ status: 'up', state: 'serving' });
  });
});

describe('GET /metrics', () => {
  it('exposes Prometheus text with HTTP, pool and process metrics', async () => {
    const created = await fetch(`${t.url}/users`, {
      method: 'POST',
      headers: adminJson,
      body: JSON.stringify({ name: 'Metric', email: 'metric@example.org' }),
    });
    const { id } = (await created.json()) as { id: number };
    await fetch(`${t.url}/users/${String(id)}`);
    await fetch(`${t.url}/users/999999`);
    await fetch(`${t.url}/no/such/route`);

    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/users\/:id",status="200"\}/,
    );
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/users\/:id",status="404"\} 1/);
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/users",status="201"\} 1/);
    expect(text).toMatch(/http_requests_total\{method="GET",route="\(unmatched\)",status="404"\} 1/);
    // Route templates, never raw ids, as labels.
    expect(text).not.toContain(`route="/users/${String(id)}"`);
    expect(text).toMatch(/^http_requests_in_flight \d+$/m);
    expect(text).toMatch(/^db_pool_connections \d+$/m);
    expect(text).toMatch(/^db_pool_idle_connections \d+$/m);
    expect(text).toMatch(/^db_pool_waiting_requests \d+$/m);
    expect(text).toMatch(new RegExp(`^db_pool_max_connections ${String(t.config.database.pool.size)}$`, 'm'));
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });
});

describe('access log and CORS', () => {
  it('writes one JSON access-log line per request when LOG_ACCESS is on', async () => {
    const app = await startTestApp({ LOG_ACCESS: 'true', CORS_ORIGINS: 'https://app.example' });
    try {
      const res = await fetch(`${app.url}/users/12345`, {
        headers: { 'x-request-id': 'access-1', origin: 'https://app.example' },
      });
      expect(res.status).toBe(404);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id');
      const other = await fetch(`${app.url}/health`, { headers: { origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const lines = app.logs.filter((l) => l['msg'] === 'request completed' && l['reqId'] === 'access-1');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ method: 'GET', url: '/users/12345', route: '/users/:id', statusCode: 404 });
      expect(typeof lines[0]!['durationMs']).toBe('number');
    } finally {
      await app.close();
    }
  });

  it('writes no access log and sends no CORS headers by default', async () => {
    await fetch(`${t.url}/health`, { headers: { 'x-request-id': 'quiet-1', origin: 'https://app.example' } }).then(
      async (res) => {
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
        await res.text();
      },
    );
    expect(t.logs.some((l) => l['msg'] === 'request completed')).toBe(false);
  });
});
