import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { isTimeoutError } from '../../src/resilience/resilience.errors.js';
import { ProbeModule, probeState } from '../support/probe.module.js';
import { externalRedisUrl, startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer, mintToken } from '../support/tokens.js';

// Buckets live in Redis when CI provides one, else in process.
const limiterSource = externalRedisUrl() === undefined ? 'local' : 'redis';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** A verified caller of its own (a fresh `sub`), so it draws from a bucket no other request touches. */
const caller = async (name: string) => bearer(await mintToken({ sub: `${name}-${randomUUID()}` }));

async function get(t: TestApp, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.url}${path}`, { headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text === '' ? undefined : JSON.parse(text)) as Record<string, any>,
  };
}

describe('rate limiting, timeouts, bulkheads and the error mapping over HTTP', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(
      {
        RATE_LIMIT_RATE: '1',
        RATE_LIMIT_CAPACITY: '3',
        ADMIN_TOKEN,
        BULKHEAD_MAX_CONCURRENT: '2',
        BULKHEAD_MAX_QUEUE: '1',
        BULKHEAD_QUEUE_TIMEOUT_MS: '5000',
        POSTS_BREAKER_FAILURES: '2',
        POSTS_RETRY_MAX_ATTEMPTS: '1',
        POSTS_BREAKER_COOLDOWN_MS: '60000',
      },
      { extraImports: [ProbeModule] },
    );
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(() => {
    probeState.lastAbortReason = undefined;
  });

  it('limits each client with a token bucket and says so in RateLimit headers', async () => {
    const key = await caller('client-a');
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await get(t, '/users?limit=1', key));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers[0]!.headers.get('ratelimit-policy')).toBe('"default";q=3;w=3');
    expect(answers[0]!.headers.get('ratelimit')).toMatch(/^"default";r=2;t=\d+$/);
    const limited = answers[3]!;
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(limited.body).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get('ratelimit')).toMatch(/^"default";r=0;t=[1-9]\d*$/);

    // Another client has its own bucket; probes and scrapes are exempt.
    expect((await get(t, '/users?limit=1', await caller('client-b'))).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      const health = await get(t, '/health', key);
      expect(health.status).toBe(200);
      expect(health.headers.get('ratelimit')).toBeNull();
    }
    expect((await get(t, '/ready', key)).status).toBe(200);
    expect((await fetch(`${t.url}/metrics`, { headers: key })).status).toBe(200);
  });

  it('applies a per-route limit from @RateLimit', async () => {
    const key = await caller('client-c');
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(t, '/probe/limited', key)).status);
    expect(statuses).toEqual([200, 200, 429]);
    const res = await get(t, '/probe/limited', await caller('client-d'));
    expect(res.headers.get('ratelimit-policy')).toBe('"probe";q=2;w=2');
  });

  it('answers 504 past @Timeout and aborts the handler signal with a TimeoutError', async () => {
    const started = Date.now();
    const res = await get(t, '/probe/slow?ms=5000', await caller('timeout-1'));
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ code: 'gateway_timeout', status: 504 });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(isTimeoutError(probeState.lastAbortReason)).toBe(true);
    const fast = await get(t, '/probe/slow?ms=1', await caller('timeout-2'));
    expect(fast.status).toBe(200);
  });

  it('rejects with 503 and Retry-After when the bulkhead and its queue are full', async () => {
    const callers = await Promise.all(Array.from({ length: 5 }, (_, i) => caller(`bulk-${String(i)}`)));
    const calls = callers.map((headers) => get(t, '/probe/bulkhead?ms=400', headers));
    const results = await Promise.all(calls);
    const statuses = results.map((r) => r.status).sort();
    // 2 run, 1 waits in the queue, 2 are refused at once.
    expect(statuses).toEqual([200, 200, 200, 503, 503]);
    const refused = results.find((r) => r.status === 503)!;
    expect(refused.body).toMatchObject({ code: 'overloaded' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('opens the breaker after consecutive failures and then fails fast with 503', async () => {
    probeState.failDependency = true;
    probeState.dependencyCalls = 0;
    const first = await get(t, '/probe/dependency', await caller('dep-1'));
    const second = await get(t, '/probe/dependency', await caller('dep-2'));
    // The upstream's own 503 is not a known problem type: a plain 500, nothing leaked.
    expect([first.status, second.status]).toEqual([500, 500]);
    expect(JSON.stringify(first.body)).not.toContain('upstream said');
    const third = await get(t, '/probe/dependency', await caller('dep-3'));
    expect(third.status).toBe(503);
    expect(third.body).toMatchObject({ code: 'dependency_unavailable' });
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(probeState.dependencyCalls).toBe(2);

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/resilience_breaker_state\{policy="posts"\} 2/);
    expect(metrics).toMatch(/resilience_breaker_transitions_total\{policy="posts",from="closed",to="open"\} 1/);
    expect(metrics).toMatch(/resilience_rejections_total\{policy="posts",kind="breaker_open"\} 1/);
    expect(metrics).toMatch(
      new RegExp(`rate_limit_rejections_total\\{policy="default",source="${limiterSource}"\\} [1-9]`),
    );
    expect(t.logs.some((l) => l['msg'] === 'circuit breaker opened' && l['policy'] === 'posts')).toBe(true);
  });

  it('shows every policy on /resilience to admins only', async () => {
    const anonymous = await get(t, '/resilience');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'invalid_token' });
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    // A credential that is neither the operator's token nor a verified one: 401, as if absent.
    const wrong = await get(t, '/resilience', { authorization: 'Bearer wrong-token-000000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ code: 'invalid_token' });
    // A verified caller without the admin scope.
    const user = await get(t, '/resilience', await caller('not-admin'));
    expect(user.status).toBe(403);
    expect(user.body).toMatchObject({ code: 'insufficient_scope' });
    expect(user.headers.get('www-authenticate')).toContain('scope="admin"');
    // An admin token, and the operator's static ADMIN_TOKEN.
    expect((await get(t, '/resilience', bearer(ADMIN))).status).toBe(200);
    const res = await get(t, '/resilience', bearer(ADMIN_TOKEN));
    expect(res.status).toBe(200);
    const posts = (res.body['policies'] as { name: string }[]).find((p) => p.name === 'posts') as Record<string, any>;
    expect(posts['breaker']).toMatchObject({ state: 'open', consecutiveFailures: 2 });
    expect(posts['bulkhead']).toMatchObject({ active: 0, queued: 0 });
    expect(posts['retryBudget']).toEqual(expect.objectContaining({ calls: expect.any(Number), retries: 0 }));
    const comments = (res.body['policies'] as { name: string }[]).find((p) => p.name === 'comments') as Record<
      string,
      any
    >;
    expect(comments['bulkhead']).toMatchObject({ maxConcurrent: 2, maxQueue: 1 });
    const limiters = res.body['rateLimiters'] as { name: string; backend: string; rejected: number }[];
    expect(limiters.find((l) => l.name === 'default')).toMatchObject({ backend: limiterSource, rate: 1, capacity: 3 });
    expect(limiters.find((l) => l.name === 'default')!.rejected).toBeGreaterThanOrEqual(1);
  });
});

describe('/resilience with no ADMIN_TOKEN configured', () => {
  it('is refused to any static token, and open to admin tokens only', async () => {
    const t = await startTestApp();
    try {
      expect((await get(t, '/resilience', { authorization: 'Bearer anything-at-all-here' })).status).toBe(401);
      expect((await get(t, '/resilience', bearer(ADMIN_TOKEN))).status).toBe(401);
      expect((await get(t, '/resilience')).status).toBe(401);
      expect((await get(t, '/resilience', await caller('plain'))).status).toBe(403);
      expect((await get(t, '/resilience', bearer(ADMIN))).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('load shedding', () => {
  it('answers 503 with Retry-After while the event loop is stalled, and keeps /health up', async () => {
    const t = await startTestApp(
      { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '100', LOAD_SHED_RETRY_AFTER_S: '3' },
      { extraImports: [ProbeModule] },
    );
    try {
      let shed: Awaited<ReturnType<typeof get>> | undefined;
      let healthDuringPressure: number | undefined;
      for (let round = 0; round < 5 && shed === undefined; round++) {
        const block = get(t, '/probe/block?ms=700');
        await new Promise((r) => setTimeout(r, 100));
        const [users, health] = await Promise.all([get(t, '/users?limit=1'), get(t, '/health')]);
        await block;
        if (users.status === 503) {
          shed = users;
          healthDuringPressure = health.status;
        }
      }
      expect(shed).toBeDefined();
      expect(shed!.headers.get('retry-after')).toBe('3');
      expect(shed!.body).toMatchObject({ code: 'overloaded', status: 503 });
      expect(healthDuringPressure).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('which client a request is charged to', () => {
  const hitFrom = async (t: TestApp, forwardedFor: string) =>
    (await fetch(`${t.url}/users?limit=1`, { headers: { 'x-forwarded-for': forwardedFor } })).status;

  it('ignores X-Forwarded-For unless TRUST_PROXY names the proxy', async () => {
    const untrusting = await startTestApp({ RATE_LIMIT_RATE: '1', RATE_LIMIT_CAPACITY: '2' });
    const trusting = await startTestApp({ RATE_LIMIT_RATE: '1', RATE_LIMIT_CAPACITY: '2', TRUST_PROXY: '127.0.0.1' });
    try {
      // Spoofed addresses all land in the caller's own (loopback) bucket.
      const spoofed = [
        await hitFrom(untrusting, '10.0.0.1'),
        await hitFrom(untrusting, '10.0.0.2'),
        await hitFrom(untrusting, '10.0.0.3'),
      ];
      expect(spoofed).toEqual([200, 200, 429]);
      // Behind a trusted proxy, each forwarded client has its own bucket.
      const forwarded = [
        await hitFrom(trusting, '10.0.0.1'),
        await hitFrom(trusting, '10.0.0.2'),
        await hitFrom(trusting, '10.0.0.3'),
      ];
      expect(forwarded).toEqual([200, 200, 200]);
      expect([await hitFrom(trusting, '10.0.0.1'), await hitFrom(trusting, '10.0.0.1')]).toEqual([200, 429]);
    } finally {
      await untrusting.close();
      await trusting.close();
    }
  });

  it('charges a verified caller to their sub from any address, and a bad credential to its address', async () => {
    const t = await startTestApp({ RATE_LIMIT_RATE: '1', RATE_LIMIT_CAPACITY: '2', TRUST_PROXY: '127.0.0.1' });
    const hit = async (forwardedFor: string, headers: Record<string, string>) =>
      (await fetch(`${t.url}/users?limit=1`, { headers: { 'x-forwarded-for': forwardedFor, ...headers } })).status;
    try {
      // Two tokens of one sub share a bucket, whichever address they come from.
      const sub = `roaming-${randomUUID()}`;
      const [first, second] = [bearer(await mintToken({ sub })), bearer(await mintToken({ sub }))];
      expect([await hit('10.1.0.1', first), await hit('10.1.0.2', second), await hit('10.1.0.3', first)]).toEqual([
        200, 200, 429,
      ]);
      // Another sub from the same address has its own; so has that address when anonymous.
      expect(await hit('10.1.0.1', await caller('neighbour'))).toBe(200);
      expect(await hit('10.1.0.1', {})).toBe(200);
      // A credential that does not verify picks no bucket: it is charged to its address, then refused.
      const forged = { authorization: `Bearer ${(await mintToken({ sub })).slice(0, -4)}AAAA` };
      expect([await hit('10.2.0.1', forged), await hit('10.2.0.1', forged), await hit('10.2.0.1', forged)]).toEqual([
        401, 401, 429,
      ]);
      expect(await hit('10.2.0.2', forged)).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('gives anonymous callers of POST /process-data the smaller anonymous budget, verified ones theirs', async () => {
    const t = await startTestApp({
      RATE_LIMIT_RATE: '1',
      RATE_LIMIT_CAPACITY: '3',
      RATE_LIMIT_ANONYMOUS_RATE: '1',
      RATE_LIMIT_ANONYMOUS_CAPACITY: '2',
    });
    const compute = (headers: Record<string, string> = {}) =>
      fetch(`${t.url}/process-data`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: '{"values":[1,2,3]}',
      });
    try {
      const anonymous = [await compute(), await compute(), await compute()];
      expect(anonymous.map((r) => r.status)).toEqual([200, 200, 429]);
      expect(anonymous[0]!.headers.get('ratelimit-policy')).toBe('"anonymous";q=2;w=2');
      const key = await caller('computing');
      const verified = [await compute(key), await compute(key), await compute(key), await compute(key)];
      expect(verified.map((r) => r.status)).toEqual([200, 200, 200, 429]);
      expect(verified[0]!.headers.get('ratelimit-policy')).toBe('"default";q=3;w=3');
    } finally {
      await t.close();
    }
  });
});
