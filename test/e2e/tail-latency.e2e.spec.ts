import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SimulatorClient } from '../../src/upstream/simulator.client.js';
import { startAppProcess, type AppProcess } from '../support/app-process.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, adminJson, bearer } from '../support/tokens.js';
import { metric } from '../support/metrics.js';

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

async function createUsers(t: Pick<TestApp, 'url'>, count: number): Promise<number[]> {
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
async function drive(t: Pick<TestApp, 'url'>, ids: number[], total: number, concurrency: number): Promise<Answer[]> {
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

async function policies(t: Pick<TestApp, 'url'>): Promise<Record<string, any>[]> {
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

    // Without hedging about 1 - 0.95² ≈ 10 % of profiles wait for a 500 ms answer; with it, about 1 %
    // (a loaded machine delays some hedges past their point: the bound leaves room for that).
    const slow = answers.filter((a) => a.ms >= 450).length;
    expect(slow / answers.length).toBeLessThan(0.06);

    const hedges = await metric(t, /^resilience_hedges_total\{policy="posts"\} (\d+)/m);
    const wins = await metric(t, /^resilience_hedge_wins_total\{policy="posts"\} (\d+)/m);
    expect(hedges).toBeGreaterThan(0);
    expect(wins).toBeGreaterThan(0);
    expect(wins).toBeLessThanOrEqual(hedges);

    // The budget: at most 10 % more calls than rounds (profiles less those that joined one in flight).
    const rounds = answers.length - (await metric(t, /^profile_single_flight_joins_total (\d+)/m));
    const { stats } = await sim.state();
    for (const group of ['posts', 'comments'] as const) {
      expect(stats[group].requests).toBeGreaterThanOrEqual(rounds);
      expect(stats[group].requests).toBeLessThanOrEqual(rounds * 1.1 + 1);
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
    const budget = posts?.hedge.budget as { hedges: number; maxHedges: number };
    expect(budget.hedges).toBeLessThanOrEqual(budget.maxHedges + 1);
    expect(posts?.retryBudget).toBeDefined(); // the retry budget is its own
    expect(await metric(t, /^resilience_hedge_budget_used_ratio\{policy="posts"\} ([\d.e-]+)/m)).toBeLessThanOrEqual(
      0.11,
    );
  });
});

describe('the hedge budget', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      PROFILE_CACHE_TTL_MS: '0',
      PROFILE_DEADLINE_MS: '2000',
      RATE_LIMIT_RATE: '100000',
      RATE_LIMIT_CAPACITY: '100000',
      // A fixed delay, so every slow call is past it (the learnt p95 would follow the slowdown).
      HEDGE_DELAY_MS: '20',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('keeps an upstream slow for everyone from getting twice the load', async () => {
    // One user per call, so no two calls share a round (single flight).
    const ids = await createUsers(t, 140);
    await sim.reset();
    await sim.setFaults('all', { latencyMs: 5 });
    await drive(t, ids.slice(0, 40), 40, 4);
    // Every answer now takes 10x the delay.
    await sim.setFaults('all', { latencyMs: 200 });
    const answers = await drive(t, ids.slice(40), 100, 10);
    expect(answers.every((a) => a.status === 200 && a.degraded.length === 0)).toBe(true);
    const sent = await metric(t, /^resilience_hedges_total\{policy="comments"\} (\d+)/m);
    const { stats } = await sim.state();
    // A hedge still waiting for a pooled socket when its twin answers is dropped before it is sent.
    expect(stats.comments.requests).toBeGreaterThanOrEqual(140);
    expect(stats.comments.requests).toBeLessThanOrEqual(140 + sent);
    // 10 % of the 140 calls in the window, not one per slow call.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(14);
    expect(
      await metric(t, /^resilience_hedges_skipped_total\{policy="comments",reason="budget_exhausted"\} (\d+)/m),
    ).toBeGreaterThan(0);
    const comments = (await policies(t)).find((p) => p.name === 'comments');
    expect(comments?.hedge.budget).toMatchObject({ calls: 140, hedges: sent, exhausted: true });
  });
});

describe('adaptive concurrency limit (CONCURRENCY=adaptive)', () => {
  // Its own process: latencies measured in the app must not include the test's own load.
  let app: AppProcess;
  beforeAll(async () => {
    app = await startAppProcess({
      PGLITE_DATA_DIR: 'memory://',
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
      // Above the 24 callers, so only the controller can bring it below them.
      ADAPTIVE_INITIAL_LIMIT: '40',
      // Tighter than the default: on a busy machine the no-load latency itself comes out high.
      ADAPTIVE_TOLERANCE: '1.2',
    });
  });
  afterAll(async () => {
    await app.stop();
  });

  it('learns the upstream’s capacity, refuses the excess at once and keeps the upstream’s queue short', async () => {
    const t = app;
    // As many users as callers and more, so no two callers share a round (single flight).
    const ids = await createUsers(t, 60);
    await sim.reset();
    // Posts: beyond 4 at once the upstream queues, so latency grows with load. Comments: instant.
    const overloaded = { latencyMs: 40, capacity: 4 } as const;
    await sim.setFaults('posts', overloaded);
    await drive(t, ids, 600, 24);
    // Measured once the limit has settled: reset the counters, same faults.
    await sim.reset();
    await sim.setFaults('posts', overloaded);
    const rejectedBefore = await metric(
      t,
      /^resilience_rejections_total\{policy="posts",kind="concurrency_limit"\} (\d+)/m,
    );
    // What waits at the upstream, sampled while the load runs.
    const queued: number[] = [];
    let driving = true;
    const sampler = (async () => {
      while (driving) {
        queued.push((await sim.state()).stats.posts.queued);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const answers = await drive(t, ids, 600, 24);
    driving = false;
    await sampler;
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // The excess was refused at once (its part degraded), and the rest answered.
    const postsDegraded = answers.filter((a) => a.degraded.includes('posts')).length;
    expect(postsDegraded).toBeGreaterThan(0);
    expect(postsDegraded).toBeLessThan(answers.length);
    expect(
      (await metric(t, /^resilience_rejections_total\{policy="posts",kind="concurrency_limit"\} (\d+)/m)) -
        rejectedBefore,
    ).toBe(postsDegraded);

    const posts = (await policies(t)).find((p) => p.name === 'posts');
    expect(posts?.concurrency).toBe('adaptive');
    const limit = posts?.adaptiveLimit as { limit: number; noLoadMs: number; inFlight: number; minLimit: number };
    expect(limit.noLoadMs).toBeGreaterThanOrEqual(35);
    expect(limit.noLoadMs).toBeLessThan(200);
    expect(limit.limit).toBeGreaterThanOrEqual(limit.minLimit);
    expect(limit.limit).toBeLessThan(24); // below the callers (and its start, 40): it found the capacity
    expect(limit.inFlight).toBe(0);
    // A static bulkhead (100) lets all 24 callers in: 20 waiting upstream all the time.
    queued.sort((a, b) => a - b);
    expect(queued.length).toBeGreaterThan(5);
    expect(queued[Math.floor(queued.length / 2)]).toBeLessThan(16);

    expect(await metric(t, /^resilience_concurrency_limit\{policy="posts"\} (\d+)/m)).toBe(limit.limit);
    expect(await metric(t, /^resilience_concurrency_noload_latency_seconds\{policy="posts"\} ([\d.e-]+)/m)).toBeCloseTo(
      limit.noLoadMs / 1000,
      3,
    );
    expect(await metric(t, /^resilience_concurrency_in_flight\{policy="posts"\} (\d+)/m)).toBe(0);
  });
});
