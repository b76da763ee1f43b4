import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { bearer, mintToken } from '../support/tokens.js';

/**
 * Rate limits per verified caller: a verified `sub` has its own bucket, and
 * anything else (no credential, a made-up one, an X-API-Key) is charged to
 * the client address. TRUST_PROXY lets each test act from its own address.
 */

const CAPACITY = 10;
let t: TestApp;
let nextAddress = 1;
const address = () => ({ 'x-forwarded-for': `10.0.0.${String(nextAddress++)}` });

const hit = async (headers: Record<string, string>, base = t.url, path = '/users?limit=1') => {
  const res = await fetch(`${base}${path}`, { headers });
  await res.arrayBuffer();
  return res;
};

const madeUp = () => `${randomBytes(12).toString('base64url')}.${randomBytes(40).toString('base64url')}.x`;

beforeAll(async () => {
  t = await startTestApp({
    RATE_LIMIT_RATE: '1',
    RATE_LIMIT_CAPACITY: String(CAPACITY),
    RATE_LIMIT_ANONYMOUS_RATE: '1',
    RATE_LIMIT_ANONYMOUS_CAPACITY: '3',
    TRUST_PROXY: '127.0.0.1',
  });
});

afterAll(async () => {
  await t.close();
});

describe('per-caller rate limits', () => {
  it('gives a flood of made-up bearer tokens no fresh buckets: 401s charged to the address, then 429', async () => {
    const from = address();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await hit({ ...from, ...bearer(madeUp()) })).status);
    expect(statuses.slice(0, CAPACITY)).toEqual(Array(CAPACITY).fill(401));
    expect(statuses.slice(CAPACITY + 1)).toEqual(Array(30 - CAPACITY - 1).fill(429));
  });

  it('ignores X-API-Key: made-up keys draw from the address bucket', async () => {
    const from = address();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await hit({ ...from, 'x-api-key': randomUUID() })).status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(CAPACITY + 1);
    expect(statuses.at(-1)).toBe(429);
  });

  it('gives each verified caller a bucket of their own, the same for every token of that caller', async () => {
    const from = address();
    for (let i = 0; i < CAPACITY + 2; i++) await hit(from);
    expect((await hit(from)).status).toBe(429);
    // Same address, but verified: the caller's own bucket.
    const sub = `caller-${randomUUID()}`;
    const first = await mintToken({ sub });
    const second = await mintToken({ sub, ttlS: 600 });
    expect(first).not.toBe(second);
    const statuses: number[] = [];
    for (let i = 0; i < CAPACITY + 2; i++) {
      statuses.push((await hit({ ...from, ...bearer(i % 2 === 0 ? first : second) })).status);
    }
    expect(statuses.slice(0, CAPACITY)).toEqual(Array(CAPACITY).fill(200));
    expect(statuses.at(-1)).toBe(429);
    const res = await hit({ ...from, ...bearer(first) });
    expect(res.headers.get('ratelimit-policy')).toBe(`"default";q=${String(CAPACITY)};w=10`);
    // Another caller is unaffected.
    expect((await hit({ ...from, ...bearer(await mintToken({ sub: `other-${randomUUID()}` })) })).status).toBe(200);
  });

  it('puts anonymous callers of POST /process-data on their own smaller budget', async () => {
    const from = address();
    const post = (headers: Record<string, string>) =>
      fetch(`${t.url}/process-data`, {
        method: 'POST',
        headers: { ...from, ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ values: [1, 2, 3] }),
      });
    const anonymous: Response[] = [];
    for (let i = 0; i < 5; i++) anonymous.push(await post({}));
    expect(anonymous.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(anonymous.at(-1)?.status).toBe(429);
    expect(anonymous[0]?.headers.get('ratelimit-policy')).toBe('"anonymous";q=3;w=3');
    const verified = await post(bearer(await mintToken({ sub: `cruncher-${randomUUID()}` })));
    expect(verified.status).toBe(200);
    expect(verified.headers.get('ratelimit-policy')).toBe(`"default";q=${String(CAPACITY)};w=10`);
  });
});

// One budget per caller across two instances on Redis: test/e2e/redis-rate-limit.e2e.spec.ts.
