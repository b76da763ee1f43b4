import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SimulatorClient } from '../../src/upstream/simulator.client.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, adminJson, bearer } from '../support/tokens.js';

// Hedged reads and the adaptive concurrency limit, driven over real sockets
// against the simulator as its own process.
let simulator: Awaited<ReturnType<typeof startSimulatorProcess>>;
let sim: SimulatorClient;

beforeAll(async () => {
  simulator = await startSimulatorProcess();
  sim = new SimulatorClient(simulator.url);
});
afterAll(async () => {
  await simulator.stop();
});

async function createUsers(t: TestApp, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${t.url}/users`, {
      method: 'POST',
      headers: adminJson,
      body: JSON.stringify({ name: `Tail ${String(i)}`, email: `tail-${String(i)}-${String(Date.now())}@example.org` }),
    });
    expect(res.status).toBe(201);
    ids.push(((await res.json()) as { id: number }).id);
  }
  return ids;
}

interface Answer {
  readonly status: number;
  readonly ms: number;
  readonly degraded: string[];
}

/** `total` profile requests, `concurrency` at a time, over the ids in turn. */
async function drive(t: TestApp, ids: number[], total: number, concurrency: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const id = ids[next++ % ids.length] ?? 1;
      const started = performance.now();
      const res = await fetch(`${t.url}/profiles/${String(id)}`);
      const body = (await res.json()) as { degraded?: string[] };
      answers.push({ status: res.status, ms: performance.now() - started, degraded: body.degraded ?? [] });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answers;
}

const metric = async (t: TestApp, pattern: RegExp): Promise<number> => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const match = pattern.exec(text);
  return match?.[1] === undefined ? 0 : Number(match[1]);
};

async function policies(t: TestApp): Promise<Record<string, any>[]> {
  const res = await fetch(`${t.url}/resilience`, { headers: bearer(ADMIN) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { policies: Record<string, any>[] }).policies;
}

describe('hedged upstream reads (posts and comments, as shipped)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '0',
      PROFILE_DEADLINE_MS: '2000',
      RATE_LIMIT_RATE: '100000',
      RATE_LIMIT_CAPACITY: '100000',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('cuts a long tail with at most the budget of extra calls, and aborts the losing attempt', async () => {
    const ids = await createUsers(t, 20);
    await sim.reset();
    // 95 % of answers at 10 ms, 5 % at 500 ms.
    await sim.setFaults('all', { latencyMs: 10, tailRate: 0.05, tailLatencyMs: 500, seed: 7 });
    const answers = await drive(t, ids, 600, 8);
    expect(answers.every((a) => a.status === 200 && a.degraded.length === 0)).toBe(true);

    // Without hedging about 1 - 0.95² ≈ 10 % of profiles wait for a 500 ms answer.
    const slow = answers.filter((a) => a.ms >= 450).length;
    expect(slow / answers.length).toBeLessThan(0.04);

    const hedges = await metric(t, /^resilience_hedges_total\{policy="posts"\} (\d+)/m);
    const wins = await metric(t, /^resilience_hedge_wins_total\{policy="posts"\} (\d+)/m);
    expect(hedges).toBeGreaterThan(0);
    expect(wins).toBeGreaterThan(0);
    expect(wins).toBeLessThanOrEqual(hedges);

    // The budget: at most 10 % more calls than profiles (the first 20 calls only learn the delay).
    const { stats } = await sim.state();
    for (const group of ['posts', 'comments'] as const) {
      expect(stats[group].requests).toBeGreaterThanOrEqual(answers.length);
      expect(stats[group].requests).toBeLessThanOrEqual(answers.length * 1.1 + 1);
    }

    // Losing attempts were cut, not left to run out their 500 ms: nothing is still open upstream.
    await new Promise((r) => setTimeout(r, 100));
    const after = await sim.state();
    expect(after.stats.posts.inFlight).toBe(0);
    expect(after.stats.comments.inFlight).toBe(0);

    const posts = (await policies(t)).find((p) => p.name === 'posts');
    expect(posts?.hedge).toMatchObject({ adaptive: true, budget: { exhausted: expect.any(Boolean) } });
    expect(posts?.hedge.delayMs).toBeGreaterThan(5);
    expect(posts?.hedge.delayMs).toBeLessThan(450);
    expect(posts?.hedge.budget.hedges).toBeLessThanOrEqual(posts?.hedge.budget.maxHedges + 1);
    expect(posts?.retryBudget).toBeDefined(); // the retry budget is its own
    expect(await metric(t, /^resilience_hedge_budget_used_ratio\{policy="posts"\} ([\d.e-]+)/m)).toBeLessThanOrEqual(
      0.11,
    );
  });

  it('sends no hedges when the upstream is slow for everyone beyond the budget', async () => {
    const ids = await createUsers(t, 5);
    await sim.reset();
    await sim.setFaults('all', { latencyMs: 10 });
    await drive(t, ids, 40, 4);
    await sim.reset();
    const before = await metric(t, /^resilience_hedges_total\{policy="comments"\} (\d+)/m);
    // Every answer now takes 20x the learnt p95: without a budget every call would be sent twice.
    await sim.setFaults('all', { latencyMs: 200 });
    const answers = await drive(t, ids, 60, 10);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const sent = (await metric(t, /^resilience_hedges_total\{policy="comments"\} (\d+)/m)) - before;
    const { stats } = await sim.state();
    expect(sent).toBeLessThanOrEqual(Math.ceil(0.1 * (answers.length + 40)) + 1);
    expect(stats.comments.requests).toBeLessThanOrEqual(answers.length + sent);
  });
});

describe('adaptive concurrency limit (CONCURRENCY=adaptive)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '0',
      PROFILE_DEADLINE_MS: '3000',
      RATE_LIMIT_RATE: '100000',
      RATE_LIMIT_CAPACITY: '100000',
      POSTS_CONCURRENCY: 'adaptive',
      POSTS_HEDGE_ENABLED: 'false',
      COMMENTS_HEDGE_ENABLED: 'false',
      ADAPTIVE_WINDOW_MS: '200',
      ADAPTIVE_INITIAL_LIMIT: '20',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('learns the upstream’s capacity, refuses the excess at once and keeps the upstream’s queue short', async () => {
    const ids = await createUsers(t, 10);
    await sim.reset();
    // Beyond 4 at once the upstream queues: latency grows with load.
    await sim.setFaults('all', { latencyMs: 40, capacity: 4 });
    const answers = await drive(t, ids, 500, 24);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // The excess was refused (its part degraded), and the rest answered.
    const postsDegraded = answers.filter((a) => a.degraded.includes('posts')).length;
    expect(postsDegraded).toBeGreaterThan(0);
    expect(postsDegraded).toBeLessThan(answers.length);
    expect(await metric(t, /^resilience_rejections_total\{policy="posts",kind="concurrency_limit"\} (\d+)/m)).toBe(
      postsDegraded,
    );

    const posts = (await policies(t)).find((p) => p.name === 'posts');
    expect(posts?.concurrency).toBe('adaptive');
    const limit = posts?.adaptiveLimit as { limit: number; noLoadMs: number; inFlight: number; minLimit: number };
    expect(limit.noLoadMs).toBeGreaterThanOrEqual(35);
    expect(limit.noLoadMs).toBeLessThan(200);
    expect(limit.limit).toBeGreaterThanOrEqual(limit.minLimit);
    expect(limit.limit).toBeLessThan(20); // below where it started: it found the capacity
    expect(limit.inFlight).toBe(0);

    // Comments have the static bulkhead (100): all 24 callers queue at the upstream.
    const { stats } = await sim.state();
    expect(stats.comments.maxQueued).toBeGreaterThanOrEqual(15);
    expect(stats.posts.maxQueued).toBeLessThan(stats.comments.maxQueued);

    expect(await metric(t, /^resilience_concurrency_limit\{policy="posts"\} (\d+)/m)).toBe(limit.limit);
    expect(await metric(t, /^resilience_concurrency_noload_latency_seconds\{policy="posts"\} ([\d.e-]+)/m)).toBeCloseTo(
      limit.noLoadMs / 1000,
      3,
    );
    expect(await metric(t, /^resilience_concurrency_in_flight\{policy="posts"\} (\d+)/m)).toBe(0);
  });
});
