import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { ProbeModule } from '../support/probe.module.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { bearer, mintToken } from '../support/tokens.js';

const completed = (t: TestApp, reqId: string) =>
  t.logs.filter((l) => l['msg'] === 'request completed' && l['reqId'] === reqId);

/** Sends only the head of a request (no body) and resolves with the first bytes of the answer. */
function headOnly(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(head);
    });
    let answer = '';
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error(`no answer before the body was sent; got ${JSON.stringify(answer)}`));
    });
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(answer);
      }
    });
    socket.on('error', reject);
  });
}

describe('the rate limiter acts before the body is read', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT_RATE: '1', RATE_LIMIT_CAPACITY: '2', BODY_LIMIT_BYTES: '1024' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a malformed or oversized body with 429 once the bucket is empty, not 400 or 413', async () => {
    // A caller allowed to write, with a bucket of their own.
    const token = await mintToken({ sub: `body-flood-${randomUUID()}`, scope: 'users:write' });
    const post = (body: string, id: string) =>
      fetch(`${t.url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(token), 'x-request-id': id },
        body,
      });
    // Admitted requests reach the parser and fail there.
    expect((await post('{"name":', 'flood-1')).status).toBe(400);
    expect((await post('x'.repeat(4096), 'flood-2')).status).toBe(413);
    // Refused ones never do.
    const malformed = await post('{"name":', 'flood-3');
    expect(malformed.status).toBe(429);
    expect(malformed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await malformed.json()).toMatchObject({ code: 'rate_limited' });
    expect((await post('x'.repeat(4096), 'flood-4')).status).toBe(429);
    // A refused request is answered while its announced body has not even been sent.
    const answer = await headOnly(
      t.url,
      `POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\nContent-Length: 50000000\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer.toLowerCase()).toContain('retry-after:');
  });

  it('refuses an anonymous write with 401 before its body is read', async () => {
    const answer = await headOnly(
      t.url,
      'POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.toLowerCase()).toContain('www-authenticate: bearer');
  });
});

describe('request logs in production', () => {
  let t: TestApp;
  beforeAll(async () => {
    // LOG_ACCESS unset: production's default (off). Slow means 50 ms or more here.
    t = await startTestApp(
      { NODE_ENV: 'production', LOG_ACCESS: '', LOG_SLOW_MS: '50' },
      { extraImports: [ProbeModule] },
    );
  });
  afterAll(async () => {
    await t.close();
  });

  it('writes no line for an ordinary answer', async () => {
    const res = await fetch(`${t.url}/users?limit=1`, { headers: { 'x-request-id': 'prod-quiet' } });
    expect(res.status).toBe(200);
    await res.text();
    expect(completed(t, 'prod-quiet')).toHaveLength(0);
  });

  it('logs a 5xx answer once, with its request id', async () => {
    const res = await fetch(`${t.url}/probe/crash`, { headers: { 'x-request-id': 'prod-crash' } });
    expect(res.status).toBe(500);
    await res.text();
    const lines = completed(t, 'prod-crash');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, statusCode: 500, method: 'GET', route: '/probe/crash' });
    // The unexpected error itself is logged once too, with its stack, by the problem filter.
    expect(t.logs.filter((l) => l['msg'] === 'unhandled error' && l['reqId'] === 'prod-crash')).toHaveLength(1);
  });

  it('logs a request slower than LOG_SLOW_MS once, marked slow', async () => {
    const res = await fetch(`${t.url}/probe/slow?ms=80`, { headers: { 'x-request-id': 'prod-slow' } });
    expect(res.status).toBe(200);
    await res.text();
    const lines = completed(t, 'prod-slow');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, statusCode: 200, slow: true });
    expect(lines[0]!['durationMs'] as number).toBeGreaterThanOrEqual(50);
  });
});

describe('request logs in development', () => {
  it('writes one access line per request by default', async () => {
    const t = await startTestApp({ NODE_ENV: 'development', LOG_ACCESS: '' });
    try {
      const res = await fetch(`${t.url}/users?limit=1`, { headers: { 'x-request-id': 'dev-access' } });
      await res.text();
      const lines = completed(t, 'dev-access');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 30, statusCode: 200, route: '/users' });
      expect(lines[0]!['slow']).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});

describe('GET /health', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers the snapshot, taken again at least once a second', async () => {
    const first = await fetch(`${t.url}/health`);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.get('x-request-id')).toBeTruthy();
    expect(first.headers.get('x-content-type-options')).toBe('nosniff');
    const a = await first.text();
    expect(JSON.parse(a)).toMatchObject({ status: 'ok', details: { process: { status: 'up', pid: process.pid } } });
    // Snapshots are at most 1 s old, so two answers 2.1 s apart come from snapshots >= 1.1 s apart.
    const uptime = (body: string) =>
      (JSON.parse(body) as { details: { process: { uptimeSeconds: number } } }).details.process.uptimeSeconds;
    await new Promise((r) => setTimeout(r, 2_100));
    const c = await (await fetch(`${t.url}/health`)).text();
    expect(uptime(c)).toBeGreaterThan(uptime(a));
  });
});
