import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { SimulatorClient } from '../../src/upstream/simulator.client.js';
import { startSharedInstances, type AppProcess } from '../support/app-process.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { externalDatabaseUrl, externalRedisUrl } from '../support/test-app.js';
import { ADMIN, adminJson, bearer } from '../support/tokens.js';

// Breakers shared through Redis between two instances of the built service.
const redisUrl = externalRedisUrl();
if (redisUrl === undefined) {
  console.warn('shared-breaker.e2e: REDIS_URL is not set, so breakers are local only; skipping (.ci/run sets it)');
}
const describeWithRedis = redisUrl === undefined ? describe.skip : describe;

let simulator: Awaited<ReturnType<typeof startSimulatorProcess>>;
let sim: SimulatorClient;

beforeAll(async () => {
  simulator = await startSimulatorProcess();
  sim = new SimulatorClient(simulator.url);
});
afterAll(async () => {
  await simulator.stop();
});

const COOLDOWN_MS = 1500;

async function startPair(shared: 'true' | 'false') {
  return startSharedInstances(externalDatabaseUrl(), 2, {
    REDIS_URL: redisUrl ?? '',
    // Each pair talks on its own channel: other suites share this Redis.
    REDIS_KEY_PREFIX: `breaker-${randomUUID()}:`,
    POSTS_SERVICE_URL: simulator.url,
    COMMENTS_SERVICE_URL: simulator.url,
    PROFILE_CACHE_TTL_MS: '0',
    POSTS_BREAKER_FAILURES: '3',
    POSTS_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
    POSTS_RETRY_MAX_ATTEMPTS: '1',
    POSTS_BREAKER_SHARED: shared,
    RATE_LIMIT_RATE: '100000',
    RATE_LIMIT_CAPACITY: '100000',
  });
}

async function postsBreaker(app: AppProcess): Promise<string> {
  const res = await fetch(`${app.url}/resilience`, { headers: bearer(ADMIN) });
  const body = (await res.json()) as { policies: { name: string; breaker: { state: string } }[] };
  return body.policies.find((p) => p.name === 'posts')?.breaker.state ?? 'missing';
}

async function profile(app: AppProcess, id: number): Promise<string[]> {
  const res = await fetch(`${app.url}/profiles/${String(id)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { degraded: string[] }).degraded;
}

/** Polls until `check` holds; the elapsed ms, or throws after `withinMs`. */
async function until(check: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > withinMs) throw new Error(`not within ${String(withinMs)} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - started;
}

async function createUser(app: AppProcess): Promise<number> {
  const res = await fetch(`${app.url}/users`, {
    method: 'POST',
    headers: adminJson,
    body: JSON.stringify({ name: 'Breaker', email: `breaker-${randomUUID()}@example.org` }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

/** Profile requests to `app` until its posts breaker opens; the number sent. */
async function tripPosts(app: AppProcess, id: number): Promise<number> {
  let sent = 0;
  while ((await postsBreaker(app)) !== 'open') {
    expect(await profile(app, id)).toContain('posts');
    if (++sent > 20) throw new Error('the breaker did not open');
  }
  return sent;
}

describeWithRedis('circuit breakers shared across instances (Redis)', () => {
  let apps: AppProcess[];
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ apps, drop } = await startPair('true'));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop()));
    await drop();
  });

  it('opens the other instance’s breaker within a second, which then calls the dead upstream no more', async () => {
    const [a, b] = apps as [AppProcess, AppProcess];
    const id = await createUser(a);
    await sim.reset();
    await sim.setFaults('posts', { outage: true });
    const sent = await tripPosts(a, id);
    expect(sent).toBe(3);
    // Subscribed in the background at boot: the other instance hears it within 1 s.
    await until(async () => (await postsBreaker(b)) === 'open', 1000);
    const before = (await sim.state()).stats.posts.requests;
    expect(before).toBe(3);
    for (let i = 0; i < 5; i++) expect(await profile(b, id)).toEqual(['posts']);
    expect((await sim.state()).stats.posts.requests).toBe(before); // b never reached the dead upstream

    // One cool-down later each probes for itself: b's probe finds the upstream back and
    // closes, and a (never asked again) learns of the close the same way.
    await sim.reset();
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
    expect(await postsBreaker(a)).toBe('half-open');
    expect(await profile(b, id)).toEqual([]);
    expect(await postsBreaker(b)).toBe('closed');
    await until(async () => (await postsBreaker(a)) === 'closed', 1000);
    expect((await sim.state()).stats.posts.requests).toBe(1); // b's probe only

    const metrics = async (app: AppProcess) => (await fetch(`${app.url}/metrics`)).text();
    expect(await metrics(a)).toMatch(/^resilience_breaker_shared_total\{policy="posts",direction="published"\} 1$/m);
    expect(await metrics(b)).toMatch(/^resilience_breaker_shared_total\{policy="posts",direction="applied"\} 1$/m);
  });
});

describeWithRedis('circuit breakers with BREAKER_SHARED=false', () => {
  let apps: AppProcess[];
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ apps, drop } = await startPair('false'));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop()));
    await drop();
  });

  it('stay local: each instance pays its own threshold', async () => {
    const [a, b] = apps as [AppProcess, AppProcess];
    const id = await createUser(a);
    await sim.reset();
    await sim.setFaults('posts', { outage: true });
    expect(await tripPosts(a, id)).toBe(3);
    await new Promise((r) => setTimeout(r, 500));
    expect(await postsBreaker(b)).toBe('closed');
    expect(await tripPosts(b, id)).toBe(3);
    expect((await sim.state()).stats.posts.requests).toBe(6);
  });
});
