// Tail latency and overload: three experiments on the built service
// (`dist/main.js`, pinned to core 0) against the upstream simulator (core 1),
// each comparing the service with a feature off and on in the same run.
//
// 1. hedging: both upstream groups answer 95 % of requests at 10 ms and 5 % at
//    500 ms; an open-loop load of --rate profiles/s (cache off). Without hedging
//    (POSTS/COMMENTS_HEDGE_ENABLED=false) vs as shipped (hedged after the recent
//    p95, 10 % budget): profile p50/p99/p99.9, upstream calls per profile,
//    hedges and wins, the service's CPU per profile.
// 2. adaptive: the simulator serves at most 8 requests per group at once, each
//    40 ms, and queues the rest (capacity 200/s per group). First the no-load
//    profile latency (--rate-low); then twice the capacity (400/s) with the
//    static bulkhead as shipped (100, sized far too high) vs
//    CONCURRENCY=adaptive: profile p99 against the no-load p99, and goodput
//    (profiles whose posts part was served, per second) against the capacity.
// 3. shared: two instances on one Redis, 100 profiles/s each, posts switched to
//    a full outage: calls that reach the dead upstream until both breakers are
//    open, with BREAKER_SHARED=false vs true (--reps runs each, fresh instances).
//    Needs Redis (REDIS_URL, default redis://127.0.0.1:6379), else it is skipped
//    with the reason.
//
// Writes the "Tail latency and overload" section of BENCHMARKS.md unless
// --no-write; always writes bench/results/tail.json.
//
//   npm run bench:tail                 (builds first; about 4 min here)
//   node bench/tail.bench.mjs --seconds 20 --rate 200 --reps 3 [--only hedging,adaptive,shared] [--no-write]
/* global fetch */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { freshDatabase as createDatabase } from './lib/database.mjs';
import { CLK_TCK, HAS_TASKSET, cpuTicks, freePort, spawnNode, stop, waitForOk } from './lib/proc.mjs';
import { writeSection } from './lib/report.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '4' },
    rate: { type: 'string', default: '200' },
    'rate-low': { type: 'string', default: '20' },
    reps: { type: 'string', default: '3' },
    only: { type: 'string', default: 'hedging,adaptive,shared' },
    'no-write': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const RATE = Number(args.rate);
const RATE_LOW = Number(args['rate-low']);
const REPS = Number(args.reps);
const ONLY = new Set(args.only.split(',').map((s) => s.trim()));
const HEADING = '## Tail latency and overload: hedging, adaptive limits, shared breakers';
const ADMIN_TOKEN = `bench-admin-${Math.random().toString(36).slice(2)}-token`;
// Enough that no two requests in flight ask for the same user: no round is shared (single flight).
const USERS = 2000;
const log = (...parts) => console.error(`[tail] ${parts.join(' ')}`);
const cleanups = [];

// ---- plumbing -------------------------------------------------------------------
const baseEnv = () => ({ PATH: process.env.PATH ?? '' });

async function startSimulator() {
  const port = await freePort();
  const child = spawnNode(['dist/upstream/simulator.main.js'], {
    core: 1,
    env: { ...baseEnv(), UPSTREAM_PORT: String(port), UPSTREAM_HOST: '127.0.0.1' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForOk(`${url}/__admin/state`, child);
  cleanups.push(() => stop(child));
  const admin = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new Error(`simulator ${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  return {
    url,
    faults: (knobs) => admin('PUT', '/__admin/faults', { group: 'all', ...knobs }),
    posts: (knobs) => admin('PUT', '/__admin/faults', { group: 'posts', ...knobs }),
    reset: () => admin('POST', '/__admin/reset'),
    state: () => admin('GET', '/__admin/state'),
  };
}

/** A fresh database on the PostgreSQL of DATABASE_URL, or undefined (each service then embeds its own). */
async function freshDatabase() {
  const db = await createDatabase(
    process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    `bench_tail_${Date.now()}_${process.pid}`,
  );
  if (db.unreachable !== undefined) {
    log(`no PostgreSQL (${db.unreachable}): each service runs its embedded database`);
    return { url: undefined, kind: 'embedded PGlite per service (in memory)' };
  }
  cleanups.push(db.drop);
  return { url: db.url, kind: `PostgreSQL ${db.version} (fresh database)` };
}

async function redisReachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

async function startService(ctx, extra) {
  const port = await freePort();
  const child = spawnNode(['dist/main.js'], {
    core: 0,
    env: {
      ...baseEnv(),
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      ...(ctx.databaseUrl === undefined ? { PGLITE_DATA_DIR: 'memory://' } : { DATABASE_URL: ctx.databaseUrl }),
      POSTS_SERVICE_URL: ctx.upstreamUrl,
      COMMENTS_SERVICE_URL: ctx.upstreamUrl,
      PROFILE_CACHE_TTL_MS: '0',
      RATE_LIMIT_RATE: '1000000',
      RATE_LIMIT_CAPACITY: '10000000',
      ADMIN_TOKEN,
      NOTIFY_WORKER_ENABLED: 'false',
      ...extra,
    },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForOk(`${base}/ready`, child);
  const service = {
    base,
    pid: child.pid,
    stop: () => stop(child),
    resilience: async () =>
      (await (await fetch(`${base}/resilience`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json())
        .policies,
    metric: async (pattern) => {
      const match = pattern.exec(await (await fetch(`${base}/metrics`)).text());
      return match === null ? 0 : Number(match[1]);
    },
  };
  return service;
}

/** Creates USERS users (a fresh embedded database has none; an external one is shared), 50 at a time. */
async function createUsers(service) {
  const ids = [];
  for (let i = 0; i < USERS; i += 50) {
    const batch = Array.from({ length: Math.min(50, USERS - i) }, async (_, j) => {
      const res = await fetch(`${service.base}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({
          name: `Tail ${i + j}`,
          email: `tail-${i + j}-${Date.now()}-${Math.random()}@example.org`,
        }),
      });
      if (res.status !== 201) throw new Error(`POST /users answered ${res.status}`);
      return (await res.json()).id;
    });
    ids.push(...(await Promise.all(batch)));
  }
  return ids;
}

/**
 * Open-loop load: `rate` profile requests per second for `seconds`, sent on
 * schedule whatever the answers (latency counted from the scheduled time, so a
 * stall is not hidden by sending less).
 */
async function openLoop(service, ids, rate, seconds) {
  const pool = new Pool(service.base, { connections: 512, pipelining: 1 });
  const latencies = [];
  const statuses = new Map();
  let postsServed = 0;
  let commentsServed = 0;
  let errors = 0;
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const ticks0 = cpuTicks(service.pid);
  const inFlight = [];
  for (let i = 0; i < total; i++) {
    const at = started + (i * 1000) / rate;
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait);
    const id = ids[i % ids.length];
    inFlight.push(
      pool
        .request({ method: 'GET', path: `/profiles/${id}` })
        .then(async (res) => {
          await res.body.dump();
          latencies.push(performance.now() - at);
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          const degraded = String(res.headers['x-degraded'] ?? '');
          if (res.statusCode === 200 && !degraded.includes('posts')) postsServed++;
          if (res.statusCode === 200 && !degraded.includes('comments')) commentsServed++;
        })
        .catch(() => {
          errors++;
        }),
    );
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - started) / 1000;
  const cpuMs = ((cpuTicks(service.pid) - ticks0) * 1000) / CLK_TCK;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const rank = (p) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? NaN;
  return {
    requests: total,
    answered: latencies.length,
    errors,
    statuses: Object.fromEntries(statuses),
    p50: rank(50),
    p99: rank(99),
    p999: rank(99.9),
    max: latencies.at(-1) ?? NaN,
    // Over the time the answers took to come, not the time they took to be sent.
    postsGoodput: postsServed / elapsedS,
    commentsGoodput: commentsServed / elapsedS,
    elapsedS,
    cpuUsPerRequest: (cpuMs * 1000) / total,
  };
}

const ms = (n) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : 'n/a');

// ---- 1. hedging -------------------------------------------------------------------
async function hedging(ctx, sim) {
  const runs = {};
  for (const [label, extra] of [
    ['without hedging', { POSTS_HEDGE_ENABLED: 'false', COMMENTS_HEDGE_ENABLED: 'false' }],
    ['hedged (as shipped)', {}],
  ]) {
    const service = await startService(ctx, extra);
    try {
      const ids = await createUsers(service);
      await sim.reset();
      await sim.faults({ latencyMs: 10, tailRate: 0.05, tailLatencyMs: 500, seed: 42 });
      // Warm-up: the JIT, the pools, and the p95 the hedge waits for.
      await openLoop(service, ids, RATE, WARMUP);
      const before = (await sim.state()).stats;
      const hedges0 = await service.metric(/^resilience_hedges_total\{policy="posts"\} (\d+)/m);
      const wins0 = await service.metric(/^resilience_hedge_wins_total\{policy="posts"\} (\d+)/m);
      const result = await openLoop(service, ids, RATE, SECONDS);
      await sleep(200);
      const after = (await sim.state()).stats;
      const posts = (await service.resilience()).find((p) => p.name === 'posts');
      runs[label] = {
        ...result,
        postsCallsPerProfile: (after.posts.requests - before.posts.requests) / result.requests,
        commentsCallsPerProfile: (after.comments.requests - before.comments.requests) / result.requests,
        hedges: (await service.metric(/^resilience_hedges_total\{policy="posts"\} (\d+)/m)) - hedges0,
        wins: (await service.metric(/^resilience_hedge_wins_total\{policy="posts"\} (\d+)/m)) - wins0,
        hedgeDelayMs: posts?.hedge?.delayMs,
        upstreamInFlightAfter: after.posts.inFlight + after.comments.inFlight,
      };
      log(`hedging, ${label}: p99 ${ms(result.p99)}, calls/profile ${runs[label].postsCallsPerProfile.toFixed(3)}`);
    } finally {
      await service.stop();
    }
  }
  return runs;
}

// ---- 2. adaptive ------------------------------------------------------------------
const CAPACITY = 8;
const SERVICE_MS = 40;
const CAPACITY_PER_S = (CAPACITY * 1000) / SERVICE_MS;

async function adaptive(ctx, sim) {
  const runs = {};
  const overload = 2 * CAPACITY_PER_S;
  for (const [label, extra, rate] of [
    ['no load (static)', {}, RATE_LOW],
    ['2x capacity, static bulkhead (100)', {}, overload],
    ['2x capacity, adaptive', { CONCURRENCY: 'adaptive' }, overload],
  ]) {
    const service = await startService(ctx, {
      ...extra,
      POSTS_HEDGE_ENABLED: 'false',
      COMMENTS_HEDGE_ENABLED: 'false',
    });
    try {
      const ids = await createUsers(service);
      await sim.reset();
      await sim.faults({ latencyMs: SERVICE_MS, capacity: CAPACITY });
      await openLoop(service, ids, rate, WARMUP);
      await sim.reset();
      await sim.faults({ latencyMs: SERVICE_MS, capacity: CAPACITY });
      const trace = [];
      let running = true;
      const poller = (async () => {
        while (running) {
          const limit = (await service.resilience()).find((p) => p.name === 'posts')?.adaptiveLimit;
          if (limit !== undefined) trace.push({ limit: limit.limit, noLoadMs: limit.noLoadMs, rttMs: limit.lastRttMs });
          await sleep(1000);
        }
      })();
      const result = await openLoop(service, ids, rate, SECONDS);
      running = false;
      await poller;
      const posts = (await service.resilience()).find((p) => p.name === 'posts');
      const { stats } = await sim.state();
      runs[label] = {
        ...result,
        offered: rate,
        limit: posts?.adaptiveLimit?.limit,
        noLoadMs: posts?.adaptiveLimit?.noLoadMs,
        upstreamMaxQueued: stats.posts.maxQueued,
        trace,
      };
      log(`adaptive, ${label}: p99 ${ms(result.p99)}, posts goodput ${result.postsGoodput.toFixed(0)}/s`);
    } finally {
      await service.stop();
    }
  }
  return runs;
}

// ---- 3. shared breakers ---------------------------------------------------------
const SHARED_TRAFFIC = [
  { label: 'equal traffic (100/s each)', rates: [100, 100] },
  { label: 'uneven traffic (100/s and 10/s)', rates: [100, 10] },
];

async function shared(ctx, sim, redisUrl) {
  // Each instance calls its own simulator, so the calls each one sent are counted apart.
  const sims = [sim, await startSimulator()];
  const runs = [];
  for (const traffic of SHARED_TRAFFIC) {
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of ['local', 'shared']) {
        const env = {
          REDIS_URL: redisUrl,
          REDIS_KEY_PREFIX: `bench-tail-${process.pid}-${runs.length}:`,
          POSTS_BREAKER_SHARED: mode === 'shared' ? 'true' : 'false',
          POSTS_HEDGE_ENABLED: 'false',
        };
        const services = await Promise.all(
          sims.map((own) => startService(ctx, { ...env, POSTS_SERVICE_URL: own.url, COMMENTS_SERVICE_URL: own.url })),
        );
        try {
          const ids = await createUsers(services[0]);
          // Embedded, each has a database of its own: the same ids exist in both.
          if (ctx.databaseUrl === undefined) await createUsers(services[1]);
          await Promise.all(sims.map((own) => own.reset()));
          // Steady traffic on both, then the outage on both simulators at once.
          const loads = services.map((s, n) => openLoop(s, ids, traffic.rates[n], WARMUP + 3));
          await sleep(WARMUP * 1000);
          const postsCalls = async () => Promise.all(sims.map(async (own) => (await own.state()).stats.posts.requests));
          const seen = await postsCalls();
          await Promise.all(sims.map((own) => own.posts({ outage: true })));
          const switched = performance.now();
          const openedAt = [undefined, undefined];
          let atOpen;
          while (performance.now() - switched < 3000) {
            const states = await Promise.all(
              services.map(async (s) => (await s.resilience()).find((p) => p.name === 'posts')?.breaker.state),
            );
            states.forEach((state, n) => {
              if (state === 'open' && openedAt[n] === undefined) openedAt[n] = performance.now() - switched;
            });
            if (states.every((state) => state === 'open')) {
              atOpen = (await postsCalls()).map((n, i) => n - (seen[i] ?? 0));
              break;
            }
            await sleep(5);
          }
          await Promise.all(loads);
          const run = { traffic: traffic.label, mode, a: atOpen?.[0] ?? NaN, b: atOpen?.[1] ?? NaN, openedAt };
          runs.push(run);
          log(
            `shared breakers, ${traffic.label}, ${mode} #${rep + 1}: ${run.a} + ${run.b} calls until both open (a at ${ms(openedAt[0])}, b at ${ms(openedAt[1])})`,
          );
        } finally {
          await Promise.all(services.map((s) => s.stop()));
        }
      }
    }
  }
  return runs;
}

// ---- report -----------------------------------------------------------------------
function section(results, ctx) {
  const lines = [HEADING, ''];
  const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores, Node ${process.version.slice(1)} (service and simulator), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; database: ${ctx.databaseKind}; ${HAS_TASKSET ? 'service on core 0, simulator and load on core 1' : 'no taskset: nothing pinned'}`;
  lines.push(
    `\`npm run bench:tail\` (\`bench/tail.bench.mjs\`): the built service against the upstream simulator, each feature off and on in the same run, open-loop load (requests sent on schedule, latency from the scheduled time), profile cache off, ${SECONDS} s measured after ${WARMUP} s of warm-up.`,
    '',
    `- Machine: ${machine}.`,
    '',
  );
  const h = results.hedging;
  if (h !== undefined) {
    const off = h['without hedging'];
    const on = h['hedged (as shipped)'];
    lines.push(
      `### Hedged reads: 95 % of upstream answers at 10 ms, 5 % at 500 ms, ${RATE} profiles/s`,
      '',
      '| | p50 | p99 | p99.9 | max | posts calls / profile | comments calls / profile | hedges (posts) | hedge wins (posts) | hedge delay (posts) | CPU / profile |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...Object.entries(h).map(
        ([label, r]) =>
          `| ${label} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.p999)} | ${ms(r.max)} | ${r.postsCallsPerProfile.toFixed(3)} | ${r.commentsCallsPerProfile.toFixed(3)} | ${r.hedges} | ${r.wins} | ${r.hedgeDelayMs === undefined ? 'off' : ms(r.hedgeDelayMs)} | ${Math.round(r.cpuUsPerRequest)} µs |`,
      ),
      '',
      `Goal: p99 under 50 ms with at most 10 % more upstream calls. Measured: p99 ${ms(off.p99)} → ${ms(on.p99)} (${(off.p99 / on.p99).toFixed(1)}x lower), upstream calls per profile +${((on.postsCallsPerProfile / off.postsCallsPerProfile - 1) * 100).toFixed(1)} % (posts), +${((on.commentsCallsPerProfile / off.commentsCallsPerProfile - 1) * 100).toFixed(1)} % (comments): ${on.p99 < 50 && on.postsCallsPerProfile <= 1.1 * off.postsCallsPerProfile && on.commentsCallsPerProfile <= 1.1 * off.commentsCallsPerProfile ? 'met' : '**missed**'}. Upstream requests still open 200 ms after the last answer: ${on.upstreamInFlightAfter} (the losers are aborted, not left to finish). CPU per profile ${Math.round(off.cpuUsPerRequest)} → ${Math.round(on.cpuUsPerRequest)} µs: the extra upstream calls, the sockets of aborted attempts closed and opened again, and the noise of a low request rate; the policy's own cost per call is in "Resilience pipeline overhead". The hedge fires after the p95 of the winning attempts' own answer times (a first attempt cut by a hedge that won leaves no sample), so hedges that win do not push the delay up by themselves; this puts the delay just above the fast answers, and the budget keeps the extra calls under 10 %.`,
      '',
    );
  }
  const a = results.adaptive;
  if (a !== undefined) {
    const noLoad = a['no load (static)'];
    lines.push(
      `### Adaptive concurrency: the upstream serves ${CAPACITY} at once, ${SERVICE_MS} ms each (capacity ${CAPACITY_PER_S}/s per group), and queues the rest`,
      '',
      '| | offered | p50 | p99 | max | posts goodput | of capacity | learnt limit | no-load latency | upstream queue (max) | CPU / profile |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...Object.entries(a).map(
        ([label, r]) =>
          `| ${label} | ${r.offered}/s | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.postsGoodput.toFixed(0)}/s | ${Math.round((100 * r.postsGoodput) / Math.min(r.offered, CAPACITY_PER_S))} % | ${r.limit ?? 'static'} | ${r.noLoadMs === undefined ? '' : ms(r.noLoadMs)} | ${r.upstreamMaxQueued} | ${Math.round(r.cpuUsPerRequest)} µs |`,
      ),
      '',
    );
    const ad = a['2x capacity, adaptive'];
    const st = a['2x capacity, static bulkhead (100)'];
    if (ad !== undefined && st !== undefined) {
      const goodput = ad.postsGoodput / CAPACITY_PER_S;
      lines.push(
        `Goal: with adaptive, profile p99 within 3x the no-load latency and goodput at least 90 % of the upstream's capacity. Measured: p99 ${ms(ad.p99)} = ${(ad.p99 / noLoad.p99).toFixed(1)}x the no-load p99 (${ms(noLoad.p99)}), goodput ${Math.round(goodput * 100)} %: ${ad.p99 <= 3 * noLoad.p99 && goodput >= 0.9 ? 'met' : '**missed**'}. The static bulkhead, sized too high, lets the upstream's queue grow: p99 ${ms(st.p99)} (${(st.p99 / noLoad.p99).toFixed(1)}x), goodput ${Math.round((st.postsGoodput / CAPACITY_PER_S) * 100)} %. Parts over the limit are refused at once and come back degraded, so every profile still answers 200. The no-load latency is measured when the process starts (the limit pinned at \`ADAPTIVE_MIN_LIMIT\` for a window), here during the warm-up at full load on a cold process: ${ad.noLoadMs === undefined ? 'n/a' : ms(ad.noLoadMs)} against the upstream's ${SERVICE_MS} ms, so the learnt limit (${ad.limit ?? 'n/a'}) stays above the ${CAPACITY} the upstream serves at once and its queue is not empty (${ad.upstreamMaxQueued} at most); the next probe, \`ADAPTIVE_PROBE_INTERVAL_MS\` (60 s) later, measures it again.`,
        '',
      );
    }
  }
  const s = results.shared;
  if (s !== undefined) {
    if (!Array.isArray(s)) {
      lines.push('### Shared breakers', '', `Skipped: ${s.skipped}.`, '');
    } else {
      const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
      lines.push(
        '### Shared breakers: two instances (a, b) on one Redis, posts switched to a full outage',
        '',
        "Calls that reached the dead upstream from the outage until both instances' breakers were open (each instance calls a simulator of its own, both switched at once, so each one's calls are counted apart). Each breaker opens after 5 consecutive failed calls (`BREAKER_FAILURES`), each call up to 3 attempts within the retry budget; a call in flight stops retrying once its breaker is open.",
        '',
        '| traffic | breakers | calls from a, b per run | total (median) | a open after | b open after (median) |',
        '| --- | --- | --- | --- | --- | --- |',
      );
      const summary = [];
      for (const { label } of SHARED_TRAFFIC) {
        for (const mode of ['local', 'shared']) {
          const mine = s.filter((r) => r.traffic === label && r.mode === mode);
          const total = median(mine.map((r) => r.a + r.b));
          summary.push({ label, mode, total, a: median(mine.map((r) => r.a)) });
          lines.push(
            `| ${label} | ${mode === 'shared' ? 'shared (as shipped)' : 'local (BREAKER_SHARED=false)'} | ${mine.map((r) => `${r.a} + ${r.b}`).join(', ')} | ${total} | ${ms(median(mine.map((r) => r.openedAt[0] ?? NaN)))} | ${ms(median(mine.map((r) => r.openedAt[1] ?? NaN)))} |`,
          );
        }
      }
      const span = (xs) => {
        if (xs.length === 0) return 'n/a';
        const [low, high] = [Math.min(...xs), Math.max(...xs)];
        return low === high ? String(low) : `${low} to ${high}`;
      };
      const uneven = SHARED_TRAFFIC[1]?.label;
      const quiet = (mode) => s.filter((r) => r.traffic === uneven && r.mode === mode).map((r) => r.b);
      const text = SHARED_TRAFFIC.map(({ label }) => {
        const local = summary.find((x) => x.label === label && x.mode === 'local');
        const sh = summary.find((x) => x.label === label && x.mode === 'shared');
        return `${label}: ${sh.total} shared vs ${local.total} local (${(local.total / sh.total).toFixed(2)}x)`;
      }).join('; ');
      lines.push(
        '',
        `Goal: at most one instance's threshold plus what is in flight, against about twice that with local breakers. Measured (medians): ${text}.`,
        '',
        `Shared, the total is one instance's threshold plus what was in flight: with uneven traffic the quiet instance sends only its calls in flight when the busy one opens (${span(quiet('shared'))}, against ${span(quiet('local'))} to reach its own threshold), and with equal traffic both meet the outage at the same moment, so the second is nearly at its threshold when the first opens and its calls in flight are most of its share. Twice that would need the second instance to pay a whole threshold after the first opened, which these loads do not produce. What no sharing avoids is the first instance's own threshold and in-flight calls (${span(s.map((r) => r.a))} here: each call retries with backoff before it counts as one failure).`,
        '',
      );
    }
  }
  return lines.join('\n');
}

// ---- main -------------------------------------------------------------------------
const began = performance.now();
let failed = false;
try {
  const db = await freshDatabase();
  const sim = await startSimulator();
  const ctx = { databaseUrl: db.url, databaseKind: db.kind, upstreamUrl: sim.url };
  const results = {};
  if (ONLY.has('hedging')) results.hedging = await hedging(ctx, sim);
  if (ONLY.has('adaptive')) results.adaptive = await adaptive(ctx, sim);
  if (ONLY.has('shared')) {
    const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    results.shared = (await redisReachable(redisUrl))
      ? await shared(ctx, sim, redisUrl)
      : { skipped: `no Redis answers at ${new URL(redisUrl).host}` };
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/tail.json', JSON.stringify(results, null, 2));
  const text = section(results, ctx);
  console.log(text);
  if (!args['no-write']) {
    writeSection(HEADING, text);
    log('BENCHMARKS.md updated');
  }
  for (const group of [results.hedging, results.adaptive]) {
    for (const r of Object.values(group ?? {})) if (r.errors > 0) failed = true;
  }
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
  log(`done in ${Math.round((performance.now() - began) / 1000)} s`);
}
process.exit(failed ? 1 : 0);
