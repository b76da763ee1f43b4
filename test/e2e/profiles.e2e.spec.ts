import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { SimulatorClient } from '../../src/upstream/simulator.client.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, adminJson, bearer } from '../support/tokens.js';
import { metric } from '../support/metrics.js';

// The upstreams are the bundled simulator running as its own process; the
// app talks to it over real sockets, exactly as it would to real services.
let simulator: Awaited<ReturnType<typeof startSimulatorProcess>>;
let sim: SimulatorClient;

beforeAll(async () => {
  simulator = await startSimulatorProcess();
  sim = new SimulatorClient(simulator.url);
});
afterAll(async () => {
  await simulator.stop();
});
beforeEach(async () => {
  await sim.reset();
});

async function createUser(t: TestApp, name: string): Promise<number> {
  const res = await fetch(`${t.url}/users`, {
    method: 'POST',
    headers: adminJson,
    body: JSON.stringify({
      name,
      email: `${name.toLowerCase().replace(/\W/g, '')}-${String(Date.now())}-${String(Math.random()).slice(2, 8)}@example.org`,
    }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

async function profile(t: TestApp, userId: number, headers: Record<string, string> = {}) {
  const started = performance.now();
  const res = await fetch(`${t.url}/profiles/${String(userId)}`, { headers });
  const text = await res.text();
  return {
    status: res.status,
    ms: performance.now() - started,
    text,
    headers: res.headers,
    body: (text === '' ? undefined : JSON.parse(text)) as Record<string, any>,
  };
}

const sha1Etag = (text: string): string => `"${createHash('sha1').update(text).digest('base64url')}"`;

describe('profiles without cache: fan-out, degradation, breaker', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '0',
      PROFILE_DEADLINE_MS: '800',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '20',
      TIMEOUT_MS: '700',
      POSTS_BREAKER_FAILURES: '3',
      POSTS_BREAKER_COOLDOWN_MS: '600',
      POSTS_RETRY_MAX_ATTEMPTS: '1',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('returns the user with posts and comments, and 404 for an unknown user', async () => {
    const id = await createUser(t, 'Fan Out');
    const res = await profile(t, id, { 'x-request-id': 'profile-trace-1' });
    expect(res.status).toBe(200);
    expect(res.body['user']).toMatchObject({ id, name: 'Fan Out' });
    expect((res.body['posts'] as { userId: number }[]).length).toBeGreaterThan(0);
    for (const p of res.body['posts'] as { userId: number }[]) expect(p.userId).toBe(id);
    expect((res.body['comments'] as unknown[]).length).toBeGreaterThan(0);
    expect(res.body['degraded']).toEqual([]);
    expect(res.headers.get('x-degraded')).toBeNull();
    expect(res.headers.get('x-cache')).toBe('MISS');
    // The request id travels to the upstreams.
    const state = await sim.state();
    expect(state.requestIds.filter((r) => r === 'profile-trace-1')).toHaveLength(2);

    const missing = await profile(t, 1_999_999_999);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'user_not_found' });
    expect((await profile(t, 0)).status).toBe(400);
  });

  it('calls the upstreams concurrently: two 200 ms upstreams take well under their sum', async () => {
    const id = await createUser(t, 'Concurrent');
    // Long enough that a busy runner's scheduling noise cannot close the gap between overlap and sum.
    await sim.setFaults('all', { latencyMs: 200 });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await profile(t, id);
      expect(res.status).toBe(200);
      expect(res.body['degraded']).toEqual([]);
      times.push(res.ms);
    }
    // Sequential calls would take >= 400 ms every time; the best of five shows the overlap.
    expect(Math.min(...times)).toBeLessThan(400);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(200);
  });

  it('answers 200 to every request at a 50% error rate, complete or degraded, and retries', async () => {
    const id = await createUser(t, 'Flaky');
    await sim.setFaults('comments', { errorRate: 0.5, errorStatus: 503, seed: 7 });
    const before = await metric(t, /resilience_retries_total\{policy="comments"\} (\d+)/);
    const degraded = [];
    for (let i = 0; i < 20; i++) {
      const res = await profile(t, id);
      expect(res.status).toBe(200);
      if ((res.body['degraded'] as string[]).length > 0) {
        expect(res.body['degraded']).toEqual(['comments']);
        expect(res.headers.get('x-degraded')).toBe('comments');
        expect(res.body['comments']).toEqual([]);
        degraded.push(i);
      }
    }
    const after = await metric(t, /resilience_retries_total\{policy="comments"\} (\d+)/);
    expect(after - before).toBeGreaterThan(0);
    // With retries most errors are absorbed: far fewer than half the profiles are degraded.
    expect(degraded.length).toBeLessThan(10);
  });

  it('opens the breaker on an outage, then answers degraded fast without calling; recovers after the cool-down', async () => {
    const id = await createUser(t, 'Outage');
    await sim.setFaults('posts', { outage: true });
    for (let i = 0; i < 3; i++) {
      const res = await profile(t, id);
      expect(res.status).toBe(200);
      expect(res.body['degraded']).toEqual(['posts']);
    }
    const calledBefore = (await sim.state()).stats.posts.requests;
    const fast = [];
    for (let i = 0; i < 5; i++) {
      const res = await profile(t, id);
      expect(res.status).toBe(200);
      expect(res.body['degraded']).toEqual(['posts']);
      fast.push(res.ms);
    }
    expect((await sim.state()).stats.posts.requests).toBe(calledBefore);
    expect(Math.min(...fast)).toBeLessThan(50);
    expect(await metric(t, /resilience_breaker_state\{policy="posts"\} (\d+)/)).toBe(2);

    await sim.setFaults('posts', { outage: false });
    await new Promise((r) => setTimeout(r, 700));
    const recovered = await profile(t, id);
    expect(recovered.status).toBe(200);
    expect(recovered.body['degraded']).toEqual([]);
    expect(await metric(t, /resilience_breaker_state\{policy="posts"\} (\d+)/)).toBe(0);
    expect(
      await metric(t, /resilience_breaker_transitions_total\{policy="posts",from="half-open",to="closed"\} (\d+)/),
    ).toBe(1);
  });

  it('cuts a slow-drip upstream at the deadline and returns what arrived', async () => {
    const id = await createUser(t, 'Drip');
    await sim.setFaults('comments', { slowDripMs: 300 });
    const res = await profile(t, id);
    expect(res.status).toBe(200);
    expect(res.body['degraded']).toEqual(['comments']);
    expect((res.body['posts'] as unknown[]).length).toBeGreaterThan(0);
    // Deadline 800 ms; the full drip would take 3 s.
    expect(res.ms).toBeLessThan(2500);
    expect(res.ms).toBeGreaterThanOrEqual(700);
  });
});

describe('profiles: single flight', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A TTL far longer than the burst, so a request that comes after the round finds the
    // cache rather than starting a second round however slowly a loaded machine serves them.
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '60000',
      PROFILE_DEADLINE_MS: '5000',
      RETRY_MAX_ATTEMPTS: '1',
      BREAKER_FAILURES: '1000',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('makes one upstream round for 100 concurrent requests of a cold profile', async () => {
    const id = await createUser(t, 'Single Flight');
    await sim.setFaults('all', { latencyMs: 100 });
    const results = await Promise.all(Array.from({ length: 100 }, () => profile(t, id)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body['degraded']).toEqual([]);
    }
    const stats = (await sim.state()).stats;
    expect(stats.posts.requests).toBe(1);
    expect(stats.comments.requests).toBe(1);
    const hit = await profile(t, id);
    expect(hit.headers.get('x-cache')).toBe('HIT');
    expect(hit.body).toEqual(results[0]!.body);
  });
});

describe('profiles with the cache', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '400',
      PROFILE_STALE_TTL_MS: '60000',
      PROFILE_DEADLINE_MS: '800',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '20',
      RETRY_MAX_ATTEMPTS: '1',
      BREAKER_FAILURES: '1000',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('serves a stale entry when an upstream fails after the TTL', async () => {
    const id = await createUser(t, 'Stale');
    const first = await profile(t, id);
    expect(first.headers.get('x-cache')).toBe('MISS');
    await new Promise((r) => setTimeout(r, 450));
    await sim.setFaults('posts', { outage: true });
    const stale = await profile(t, id);
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-cache')).toBe('STALE');
    expect(stale.body['stale']).toBe(true);
    expect(stale.body['degraded']).toEqual([]);
    expect(stale.body['posts']).toEqual(first.body['posts']);
    // The stored bytes plus "stale": the same keys in the same order, and an ETag of its own.
    expect(Object.keys(stale.body)).toEqual(['user', 'posts', 'comments', 'degraded', 'stale']);
    expect(stale.text).toBe(JSON.stringify({ ...first.body, stale: true }));
    expect(stale.headers.get('etag')).toBe(sha1Etag(stale.text));
    expect(await metric(t, /profile_cache_requests_total\{result="stale"\} (\d+)/)).toBeGreaterThanOrEqual(1);
  });

  it('evicts a profile when its user changes, and answers 304 to a matching If-None-Match', async () => {
    const id = await createUser(t, 'Evict');
    const first = await profile(t, id);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    // Serialised once: the ETag is the hash of the very bytes sent, and a hit sends the same bytes.
    expect(etag).toBe(sha1Etag(first.text));
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const hit = await profile(t, id);
    expect(hit.headers.get('x-cache')).toBe('HIT');
    expect(hit.text).toBe(first.text);
    expect(hit.headers.get('etag')).toBe(etag);
    expect(hit.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const notModified = await profile(t, id, { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.body).toBeUndefined();
    expect(notModified.headers.get('x-cache')).toBe('HIT');

    const patched = await fetch(`${t.url}/users/${String(id)}`, {
      method: 'PATCH',
      headers: adminJson,
      body: JSON.stringify({ name: 'Evicted' }),
    });
    expect(patched.status).toBe(200);
    const after = await profile(t, id, { 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(after.headers.get('x-cache')).toBe('MISS');
    expect(after.body['user']).toMatchObject({ name: 'Evicted' });
    expect(after.headers.get('etag')).not.toBe(etag);

    await fetch(`${t.url}/users/${String(id)}`, { method: 'DELETE', headers: bearer(ADMIN) });
    expect((await profile(t, id)).status).toBe(404);
  });
});

describe('POST /profiles/batch', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '0',
      PROFILE_BATCH_CONCURRENCY: '3',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const batch = async (body: unknown) => {
    const res = await fetch(`${t.url}/profiles/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('answers one result per id, in order, never more than the concurrency cap at once', async () => {
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await createUser(t, `Batch ${String(i)}`));
    await sim.setFaults('all', { latencyMs: 100 });
    const userIds = [ids[0]!, 1_999_999_998, ids[1]!, ids[2]!, ids[3]!, ids[4]!, ids[5]!, ids[0]!];
    const res = await batch({ userIds });
    expect(res.status).toBe(200);
    const results = res.body['results'] as { userId: number; status: number; profile?: any; problem?: any }[];
    expect(results.map((r) => r.userId)).toEqual(userIds);
    expect(results.map((r) => r.status)).toEqual([200, 404, 200, 200, 200, 200, 200, 200]);
    expect(results[1]!.problem).toMatchObject({ code: 'user_not_found', status: 404 });
    expect(results[0]!.profile.user.id).toBe(ids[0]);
    const stats = (await sim.state()).stats;
    expect(stats.posts.maxInFlight).toBeLessThanOrEqual(3);
    expect(stats.posts.maxInFlight).toBeGreaterThanOrEqual(2);
  });

  it('rejects bad input with a 400 problem: not ids, too many, URLs', async () => {
    for (const body of [
      {},
      { userIds: [] },
      { userIds: Array.from({ length: 101 }, (_, i) => i + 1) },
      { userIds: ['http://evil.example/'] },
      { userIds: [1], urls: ['http://x'] },
    ]) {
      const res = await batch(body);
      expect(res.status).toBe(400);
      expect(res.body['code']).toBe('validation_failed');
    }
  });
});

describe('profiles on the defaults', () => {
  it('starts the bundled simulator when no upstream URL is set, and survives a dead Redis cache', async () => {
    const t = await startTestApp({ REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const id = await createUser(t, 'Defaults');
      for (let i = 0; i < 3; i++) {
        const res = await profile(t, id);
        expect(res.status).toBe(200);
        expect(res.body['degraded']).toEqual([]);
        // No shared cache reachable: every read is a miss, never an error.
        expect(res.headers.get('x-cache')).toBe('MISS');
      }
      const text = await (await fetch(`${t.url}/metrics`)).text();
      const errors = [...text.matchAll(/^profile_cache_errors_total\{op="\w+"\} (\d+)$/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
      expect(errors).toBeGreaterThanOrEqual(1);
      expect(
        t.logs.some((l) => l['msg'] === 'upstream simulator started (POSTS_SERVICE_URL / COMMENTS_SERVICE_URL unset)'),
      ).toBe(true);
    } finally {
      await t.close();
    }
  });
});
