// `npm run bench`: the service against a no-framework baseline and the seed's
// own stack (FastAPI), on two Node runtimes, in one run.
//
// - Servers under test, each pinned to core 0 (taskset, where it exists): the
//   service (`dist/main.js`), the baseline (bench/baseline/server.mjs, node:http
//   + pg + undici doing the same SQL and upstream calls) and the FastAPI peer
//   (bench/peers/fastapi/app.py: uvicorn with uvloop and httptools, one worker,
//   access log off; asyncpg, one shared httpx.AsyncClient). The load generator
//   (wrk, else autocannon in a child process), the upstream simulator and the
//   SSE/WebSocket clients run on core 1. Loopback only.
// - Runtimes (--runtimes): `system` is the Node running this script
//   (process.execPath), `24` the Node 24 LTS binary that `bash scripts/node24.sh`
//   prints (installed into a cache folder outside the repo when missing). The
//   service and the baseline run under each runtime; FastAPI does not depend on
//   it but is measured again inside each runtime's group, in the same
//   alternating rounds, so every ratio is same-session. Load generator, seeding,
//   simulator and the stream/process-data parts stay on the system Node.
// - FastAPI peer: needs `python3 -c 'import fastapi, uvicorn, uvloop, httptools,
//   asyncpg, httpx, psutil'` (tried with BENCH_PYTHON, `python3` on PATH, then
//   /usr/bin/python3); when none imports them, `apt-get install` of Debian's
//   python3-{fastapi,uvicorn,uvloop,httptools,asyncpg,httpx,psutil} (and once
//   more after `apt-get update -qq`). Where that fails its columns say "not
//   installed: <reason>" and everything else runs.
// - Database: a fresh `bench_<ts>` on the PostgreSQL server of DATABASE_URL
//   (default postgres://postgres@127.0.0.1:5432/postgres), dropped at the end;
//   if none answers, an embedded PGlite started by this process. Every server
//   uses it with the same pool size (DB_POOL_SIZE), seeded with --users users,
//   and the same upstream URLs.
// - HTTP scenarios, per runtime: GET /health, GET /users/:id (random ids), the
//   same with a bearer token (the cached verification's cost), GET /profiles/:id
//   with the simulator at a fixed latency (cache off, then on; FastAPI has no
//   cache and skips "cache on"), POST /users (with a users:write token).
// - Tokens: minted once by the built CLI (`node dist/auth/token.cli.js --sub
//   bench --scope users:write --ttl 1h`) with AUTH_KEYS_DIR a fresh temporary
//   folder, which every service under test is started with, so they verify them.
//   The baseline and FastAPI get the same header and ignore it. The service runs as
//   shipped for production (NODE_ENV=production, LOG_LEVEL/LOG_ACCESS unset,
//   PROFILE_CACHE_TTL_MS per scenario, the rate limiter's budget raised so the
//   one load generator is never refused). Each side: warm-up, then --rounds
//   measured rounds alternating the sides' order; per round the server's CPU
//   time (utime + stime of /proc/<pid>/stat, all threads) is read before and
//   after, giving CPU µs per request; RSS is sampled. Then "development" (the
//   access log on: NODE_ENV=development) for /health, /users/:id and /profiles
//   cache off on Node 24 (service and baseline), in its own table.
// - Targets, on Node 24 (⚠ in the table, misses listed under it): /users/:id,
//   POST /users, /profiles cache off: service ≥ --target (0.8) × baseline req/s,
//   ≥ 3× FastAPI (profiles: 6×), p99 ≤ 1.5× baseline p99; /health ≥ 3× FastAPI;
//   /profiles cache on ≥ --target × baseline. A scenario missing a target is run
//   again on a Node 24 service started with --cpu-prof; the profile lands in
//   bench/results/ and its top self-time functions and modules in the report.
// - On the system Node only: SSE (/events) and WebSocket (/ws) delivery delay at
//   N connections, and bench/process-data.bench.mjs (/process-data with /health
//   beside it). The connection scale (N grown to thousands of connections) is its
//   own bench: `npm run bench:connections` (bench/connections.bench.mjs).
// - Writes the section of BENCHMARKS.md (or, with --smoke / --no-write, only
//   bench/results/); prints the total time; exits 1 when any scenario had errors
//   or a round without a single answer (a stall), or a server under test failed
//   to start.
//
//   npm run bench                  (builds, then node bench/run.mjs; about 11 min here)
//   npm run bench:smoke            (CI: builds, then node bench/run.mjs --smoke)
//   node bench/run.mjs --seconds 10 --rounds 2 --warmup 3 --connections 50 --users 10000 --sse-clients 200 \
//     --ws-clients 200 --runtimes system,24 --only health,users-get \
//     [--no-write] [--no-profile] [--no-dev] [--no-fastapi]
//
// --smoke: every code path, briefly (about 75 s here): both runtimes and FastAPI
// (when installed) with 1-second scenarios (1 round, no warm-up, 8 connections),
// the development table, a 1-second CPU profile of the first scenario under a
// target, and small SSE/WebSocket/process-data runs; no BENCHMARKS.md.
// --only takes scenario names (health, users-get, users-get-token, profiles-nocache,
// profiles-cache, users-post, sse, ws, process-data).
// Every value flag has a BENCH_<FLAG> environment variable (BENCH_SECONDS=5,
// BENCH_RUNTIMES=24 ...); BENCH_PYTHON names the FastAPI peer's interpreter.
/* global fetch */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { runCleanups } from './lib/cleanup.mjs';
import { summariseProfile } from './lib/cpu-profile.mjs';
import { freshDatabase } from './lib/database.mjs';
import { findFastApi, spawnFastApi } from './lib/fastapi.mjs';
import { HAS_WRK, runLoad } from './lib/load.mjs';
import {
  CLK_TCK,
  cpuTicks,
  freePort,
  HAS_TASKSET,
  runJsonChild,
  sampleMemory,
  spawnNode,
  stop,
  waitForOk,
} from './lib/proc.mjs';
import { describeMachine, loadAverage, writeSection } from './lib/report.mjs';
import { mintToken } from './lib/tokens.mjs';

const SMOKE = process.argv.includes('--smoke');
const defaults = SMOKE
  ? {
      seconds: '1',
      rounds: '1',
      warmup: '0',
      connections: '8',
      users: '500',
      'sse-clients': '20',
      'ws-clients': '20',
      messages: '5',
      'process-data-seconds': '1',
      'process-data-values': '20000',
      'profile-seconds': '1',
      runtimes: 'system,24',
    }
  : {
      seconds: '10',
      rounds: '2',
      warmup: '3',
      connections: '50',
      users: '10000',
      'sse-clients': '200',
      'ws-clients': '200',
      messages: '30',
      'process-data-seconds': '5',
      'process-data-values': '200000',
      'profile-seconds': '6',
      runtimes: 'system,24',
    };
const flag = (name, type = 'string') => ({
  type,
  default:
    type === 'boolean' ? false : (process.env[`BENCH_${name.toUpperCase().replaceAll('-', '_')}`] ?? defaults[name]),
});
const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    seconds: flag('seconds'),
    warmup: flag('warmup'),
    connections: flag('connections'),
    rounds: flag('rounds'),
    users: flag('users'),
    'pool-size': { type: 'string', default: process.env.BENCH_POOL_SIZE ?? '10' },
    'upstream-latency': { type: 'string', default: process.env.BENCH_UPSTREAM_LATENCY ?? '10' },
    'sse-clients': flag('sse-clients'),
    'ws-clients': flag('ws-clients'),
    messages: flag('messages'),
    'process-data-seconds': flag('process-data-seconds'),
    'process-data-values': flag('process-data-values'),
    'profile-seconds': flag('profile-seconds'),
    runtimes: flag('runtimes'),
    target: { type: 'string', default: process.env.BENCH_TARGET ?? '0.8' },
    only: { type: 'string', default: process.env.BENCH_ONLY ?? '' },
    generator: { type: 'string', default: process.env.BENCH_GENERATOR ?? (HAS_WRK ? 'wrk' : 'autocannon') },
    'no-write': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    'no-dev': { type: 'boolean', default: false },
    'no-fastapi': { type: 'boolean', default: false },
  },
});

const num = (k) => Number(args[k]);
const SECONDS = num('seconds');
const WARMUP = num('warmup');
const CONNECTIONS = num('connections');
const ROUNDS = Math.max(1, num('rounds'));
const USERS = num('users');
const POOL = num('pool-size');
const TARGET = num('target');
const PROFILE_SECONDS = args['no-profile'] ? 0 : num('profile-seconds');
const only = new Set(args.only.split(',').filter(Boolean));
const wanted = (name) => only.size === 0 || only.has(name);
const WRITE = !SMOKE && !args['no-write'];
const RUNTIMES = resolveRuntimes(args.runtimes);
// Targets and CPU profiles: on Node 24 only. The development table: on Node 24, else the last runtime given.
const TARGET_RUNTIME = RUNTIMES.find((r) => r.key === '24');
const DEV_RUNTIME = TARGET_RUNTIME ?? RUNTIMES.at(-1);
const STAMP = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const RESULTS = join('bench', 'results');
mkdirSync(RESULTS, { recursive: true });
const HEADING = '## HTTP scenarios against a no-framework baseline';
const SIDES = ['service', 'baseline', 'fastapi'];
const T0 = Date.now();
const log = (line) => process.stderr.write(`[bench +${((Date.now() - T0) / 1000).toFixed(1)}s] ${line}\n`);
const mb = (bytes) => (Number.isFinite(bytes) ? (bytes / 1048576).toFixed(0) : 'n/a');

// Servers under test still running are killed if the suite is interrupted (track).
const { cleanups, cleanup, track } = runCleanups(log);

// ---- database -----------------------------------------------------------------------
async function setUpDatabase() {
  const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const db = await freshDatabase(serverUrl, `bench_${STAMP.replace('-', '_')}_${process.pid}`);
  if (db.unreachable !== undefined) {
    log(`no PostgreSQL at ${new URL(serverUrl).host} (${db.unreachable}); using an embedded PGlite`);
    const { EmbeddedPostgres } = await import('../dist/database/embedded/embedded-postgres.js');
    const embedded = new EmbeddedPostgres({ dataDir: 'memory://', port: 0, maxConnections: POOL * 2 + 8 });
    const url = await embedded.start();
    cleanups.push(() => embedded.stop());
    return { url, kind: 'embedded PGlite (in the orchestrator process, unpinned)' };
  }
  cleanups.push(db.drop);
  return { url: db.url, kind: `PostgreSQL ${db.version} at ${db.host} (fresh database, unpinned)` };
}

// ---- servers ------------------------------------------------------------------------
const baseEnv = () => ({ PATH: process.env.PATH ?? '' });

/** What the service and the baseline are both given: address, database, pool size, upstreams. */
function commonEnv(port, ctx) {
  return {
    ...baseEnv(),
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: ctx.databaseUrl,
    DB_POOL_SIZE: String(POOL),
    POSTS_SERVICE_URL: ctx.upstreamUrl,
    COMMENTS_SERVICE_URL: ctx.upstreamUrl,
    // The baseline prepares its read by name as the service does (asyncpg prepares by itself),
    // except on PGlite, whose connections share one session (the service sends it unnamed there too).
    BASELINE_NAMED_STATEMENTS: ctx.embeddedDatabase ? 'false' : 'true',
  };
}

function serviceEnv(port, ctx, extra = {}) {
  return {
    ...commonEnv(port, ctx),
    NODE_ENV: 'production',
    // The limiter runs on every request but never refuses: one client IP sends all the load.
    RATE_LIMIT_RATE: '1000000',
    RATE_LIMIT_CAPACITY: '10000000',
    // LOG_LEVEL and LOG_ACCESS are not set: the build's defaults for NODE_ENV apply (see shippedLogging).
    MAIL_OUTBOX_DIR: join(RESULTS, 'mail'),
    // The key the bench's tokens are signed with (see mintTokens).
    AUTH_KEYS_DIR: ctx.authKeysDir,
    ...extra,
  };
}

/** The build's logging defaults for NODE_ENV `env` (what the service runs with, LOG_* unset). */
async function shippedLogging(env) {
  try {
    const { parseConfig } = await import('../dist/config/load-config.js');
    const { level, access } = parseConfig({ NODE_ENV: env }).log;
    return `LOG_LEVEL ${level}, access log ${access ? 'on' : 'off'}`;
  } catch (error) {
    return `logging defaults unknown (${error.message})`;
  }
}

/** --runtimes: `system` (this Node) and `24` (Node 24 LTS from scripts/node24.sh). */
function resolveRuntimes(spec) {
  const keys = [
    ...new Set(
      spec
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean),
    ),
  ];
  if (keys.length === 0) throw new Error('--runtimes: none given (system, 24)');
  return keys.map((key) => {
    if (key === 'system') {
      return {
        key,
        bin: process.execPath,
        version: process.version,
        label: `Node ${process.version.slice(1)} (system)`,
      };
    }
    if (key === '24') {
      const r = spawnSync('bash', ['scripts/node24.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const bin = r.stdout?.trim().split('\n').at(-1) ?? '';
      if (r.status !== 0 || bin === '') throw new Error(`scripts/node24.sh failed (${r.status}): ${r.stderr}`);
      const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
      return { key, bin, version, label: `Node ${version.slice(1)}` };
    }
    throw new Error(`--runtimes: unknown runtime "${key}" (system, 24)`);
  });
}

/** What the FastAPI columns say when the peer does not run. */
const peerMissing = (fa) => (fa.skipped ? fa.reason : `not installed: ${fa.reason}`);

/** Starts one server under test on core 0 and waits for its /ready. */
async function startServer(side, ctx, { cacheTtlMs, cpuProfDir, runtime, config = 'production' } = {}) {
  const port = await freePort();
  const extra = { PROFILE_CACHE_TTL_MS: String(cacheTtlMs ?? 30000) };
  const node = runtime?.bin ?? process.execPath;
  let child;
  if (side === 'service') {
    child = spawnNode(['dist/main.js'], {
      core: 0,
      node,
      env: serviceEnv(port, ctx, { ...extra, NODE_ENV: config }),
      nodeOptions: cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir],
    });
  } else if (side === 'baseline') {
    child = spawnNode(['bench/baseline/server.mjs'], {
      core: 0,
      node,
      env: { ...commonEnv(port, ctx), UPSTREAM_MAX_SOCKETS: '64', ...extra },
    });
  } else {
    child = spawnFastApi(ctx.fastapi.python, port, {
      core: 0,
      env: { ...commonEnv(port, ctx), UPSTREAM_MAX_SOCKETS: '64' },
    });
  }
  const base = `http://127.0.0.1:${port}`;
  track(child);
  try {
    await waitForOk(`${base}/ready`, child);
  } catch (error) {
    await stop(child);
    throw error;
  }
  return { side, base, child, pid: child.pid, stop: () => stop(child) };
}

// ---- HTTP scenarios -------------------------------------------------------------------
// targets: vsBaseline (service/baseline req/s ≥), vsFastapi (service/FastAPI req/s ≥), p99 (service p99 ≤ x × baseline's).
const SCENARIOS = [
  {
    name: 'health',
    title: 'GET /health',
    load: { kind: 'static', path: '/health' },
    cacheTtlMs: 0,
    fastapi: true,
    targets: { vsFastapi: 3 },
  },
  {
    name: 'users-get',
    title: 'GET /users/:id (random of the seeded ids)',
    load: { kind: 'randomId', path: '/users/' },
    cacheTtlMs: 0,
    fastapi: true,
    targets: { vsBaseline: TARGET, vsFastapi: 3, p99: 1.5 },
  },
  {
    name: 'users-get-token',
    title: 'GET /users/:id with a bearer token (verified once, then cached)',
    // The same reads as users-get, each carrying one valid token: the difference is what a cached verification costs.
    load: { kind: 'randomId', path: '/users/', auth: 'reader' },
    cacheTtlMs: 0,
    fastapi: true,
    targets: { vsBaseline: TARGET, vsFastapi: 3, p99: 1.5 },
  },
  {
    name: 'profiles-nocache',
    title: 'GET /profiles/:id, upstreams at {latency} ms, cache off',
    load: { kind: 'randomId', path: '/profiles/' },
    cacheTtlMs: 0,
    fastapi: true,
    targets: { vsBaseline: TARGET, vsFastapi: 6, p99: 1.5 },
  },
  {
    name: 'profiles-cache',
    title: 'GET /profiles/:id, upstreams at {latency} ms, cache on (30 s TTL), ids 1..1000',
    // A hot set that the warm-up fills, so the measured run is mostly hits.
    load: { kind: 'randomId', path: '/profiles/', maxId: 1000 },
    cacheTtlMs: 30000,
    // The seed has no cache.
    fastapi: false,
    targets: { vsBaseline: TARGET },
  },
  {
    name: 'users-post',
    title: 'POST /users (unique emails, a users:write token)',
    load: { kind: 'createUser', auth: 'writer' },
    cacheTtlMs: 0,
    fastapi: true,
    targets: { vsBaseline: TARGET, vsFastapi: 3, p99: 1.5 },
  },
];
/** Measured again with NODE_ENV=development (the access log on), on Node 24, service and baseline. */
const DEV_SCENARIOS = new Set(['health', 'users-get', 'profiles-nocache']);

/**
 * Bearer tokens by role, minted once by main() (mintTokens): `writer` (users:write) for the writes,
 * `reader` (no scope) for the token-carrying reads.
 */
const TOKENS = {};

function mintTokens(keysDir) {
  TOKENS.writer = mintToken(keysDir, 'bench', 'users:write');
  TOKENS.reader = mintToken(keysDir, 'bench-reader');
}

/** The headers a scenario's requests carry: its role's bearer token, if it names one. */
function headersOf(load) {
  if (load.auth === undefined) return {};
  const token = TOKENS[load.auth];
  if (token === undefined) throw new Error(`no ${load.auth} token minted`);
  return { authorization: `Bearer ${token}` };
}

function loadSpec(scenario, server, seconds, connections = CONNECTIONS) {
  return {
    ...scenario.load,
    headers: headersOf(scenario.load),
    base: server.base,
    maxId: Math.min(scenario.load.maxId ?? USERS, USERS),
    token: `${server.side[0]}${Math.random().toString(36).slice(2, 8)}`,
    connections,
    seconds,
  };
}

/**
 * Several rounds on one side, merged: requests over time, p50 the median of the rounds', p99 the worst;
 * CPU µs per request = the server's CPU ticks over the rounds / CLK_TCK / the requests answered.
 */
function merge(rounds) {
  const requests = rounds.reduce((a, r) => a + r.requests, 0);
  // A round that got no answer at all still counts its time.
  const seconds = rounds.reduce((a, r) => a + (r.seconds ?? r.requests / r.rps), 0);
  const p50s = rounds.map((r) => r.p50).sort((a, b) => a - b);
  const ticks = rounds.reduce((a, r) => a + r.cpuTicks, 0);
  return {
    generator: rounds[0].generator,
    rounds: rounds.length,
    requests,
    rps: requests / seconds,
    p50: p50s[Math.floor((p50s.length - 1) / 2)],
    p99: Math.max(...rounds.map((r) => r.p99)),
    max: Math.max(...rounds.map((r) => r.max)),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    non2xx: rounds.reduce((a, r) => a + r.non2xx, 0),
    // Rounds without a single answer (and so, when shorter than wrk's 5 s timeout, without errors either).
    stalledRounds: rounds.filter((r) => r.requests === 0).length,
    cpuTicks: ticks,
    cpuUsPerRequest: requests > 0 ? ((ticks / CLK_TCK) * 1e6) / requests : NaN,
  };
}

/** The ratios of one scenario's result, and (on the target runtime, production) the targets it misses. */
function evaluate(r, onTarget) {
  r.vsBaseline = r.service.rps / r.baseline.rps;
  r.vsFastapi = r.fastapi === undefined ? NaN : r.service.rps / r.fastapi.rps;
  r.p99Ratio = r.service.p99 / r.baseline.p99;
  r.cpuRatio = r.service.cpuUsPerRequest / r.baseline.cpuUsPerRequest;
  r.misses = [];
  r.unevaluated = [];
  if (!onTarget) return r;
  const t = r.scenario.targets;
  if (t.vsBaseline !== undefined && !(r.vsBaseline >= t.vsBaseline))
    r.misses.push({ key: 'vsBaseline', text: `service/baseline req/s ${f2(r.vsBaseline)} < ${t.vsBaseline}` });
  if (t.vsFastapi !== undefined) {
    if (r.fastapi === undefined) r.unevaluated.push(`service/FastAPI ≥ ${t.vsFastapi} (${r.fastapiNote})`);
    else if (!(r.vsFastapi >= t.vsFastapi))
      r.misses.push({ key: 'vsFastapi', text: `service/FastAPI req/s ${f2(r.vsFastapi)} < ${t.vsFastapi}` });
  }
  if (t.p99 !== undefined && !(r.service.p99 <= t.p99 * r.baseline.p99))
    r.misses.push({
      key: 'p99',
      text: `service p99 ${f2(r.service.p99)} ms > ${t.p99} × baseline p99 ${f2(r.baseline.p99)} ms (${f2(r.p99Ratio)}×)`,
    });
  return r;
}

/** Warm-up per side, then ROUNDS rounds alternating the sides' order, the server's CPU ticks read around each. */
async function measureScenario(scenario, servers, sides, opts) {
  const perRound = SECONDS / ROUNDS;
  const memory = Object.fromEntries(sides.map((side) => [side, sampleMemory(servers[side].pid)]));
  if (WARMUP > 0) {
    for (const side of sides) await runLoad(loadSpec(scenario, servers[side], WARMUP), opts);
  }
  const rounds = Object.fromEntries(sides.map((side) => [side, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Forwards, then backwards: a steady drift in the machine's background load hits every side alike.
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const { pid } = servers[side];
      const before = cpuTicks(pid);
      const r = await runLoad(loadSpec(scenario, servers[side], perRound), opts);
      rounds[side].push({ ...r, cpuTicks: cpuTicks(pid) - before });
      if (r.requests === 0)
        log(`  ${side}: round ${round + 1} got no answer at all (a stall: server, database or machine)`);
    }
  }
  const out = {};
  for (const side of sides) {
    out[side] = { ...merge(rounds[side]), peakRss: memory[side].stop() };
    const x = out[side];
    log(
      `  ${side}: ${x.rps.toFixed(0)} req/s, p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, CPU ${f1(x.cpuUsPerRequest)} µs/req, errors ${x.errors}, peak RSS ${mb(x.peakRss)} MB`,
    );
  }
  return out;
}

/**
 * Runs the HTTP scenarios: per runtime (production configuration, with FastAPI), then the development
 * configuration on Node 24. Within one, scenarios of the same cache setting share one process per side,
 * all started up front on core 0 (only the side under load is busy); each scenario warms every side up,
 * then alternates ROUNDS runs per side, so a change in the machine's background load hits all sides alike.
 */
async function httpScenarios(ctx) {
  const results = [];
  const sessions = RUNTIMES.map((runtime) => ({
    runtime,
    config: 'production',
    scenarios: SCENARIOS.filter((s) => wanted(s.name)),
    peer: true,
  }));
  if (DEV_RUNTIME !== undefined && !args['no-dev']) {
    sessions.push({
      runtime: DEV_RUNTIME,
      config: 'development',
      scenarios: SCENARIOS.filter((s) => DEV_SCENARIOS.has(s.name) && wanted(s.name)),
      peer: false,
    });
  }
  const opts = { resultsDir: RESULTS, generator: args.generator };
  for (const { runtime, config, scenarios, peer } of sessions) {
    const groups = new Map();
    for (const s of scenarios) groups.set(s.cacheTtlMs, [...(groups.get(s.cacheTtlMs) ?? []), s]);
    for (const [cacheTtlMs, group] of groups) {
      const servers = {};
      let fastapiNote = peer ? undefined : 'not in this configuration';
      try {
        servers.service = await startServer('service', ctx, { cacheTtlMs, runtime, config });
        servers.baseline = await startServer('baseline', ctx, { cacheTtlMs, runtime });
        if (peer && group.some((s) => s.fastapi)) {
          if (ctx.fastapi.python === undefined) fastapiNote = peerMissing(ctx.fastapi);
          else {
            try {
              servers.fastapi = await startServer('fastapi', ctx, {});
            } catch (error) {
              fastapiNote = `failed to start: ${error.message.split('\n')[0]}`;
              ctx.failures.push(`FastAPI (${runtime.label}): ${error.message}`);
              log(`  FastAPI ${fastapiNote}`);
            }
          }
        }
        for (const scenario of group) {
          const sides = SIDES.filter((side) => servers[side] !== undefined && (side !== 'fastapi' || scenario.fastapi));
          log(
            `${scenario.name} [${runtime.label}, ${config}]: ${sides.join(', ')}; ${ROUNDS} x ${SECONDS / ROUNDS} s per side after ${WARMUP} s warm-up, ${CONNECTIONS} connections`,
          );
          const r = await measureScenario(scenario, servers, sides, opts);
          results.push(
            evaluate(
              {
                runtime: runtime.key,
                runtimeLabel: runtime.label,
                config,
                scenario,
                ...r,
                fastapiNote: scenario.fastapi ? fastapiNote : '-',
              },
              runtime === TARGET_RUNTIME && config === 'production',
            ),
          );
        }
      } finally {
        for (const side of SIDES) if (servers[side] !== undefined) await servers[side].stop();
      }
    }
  }
  return results;
}

/** A service started with --cpu-prof, the scenario run against it, the main thread's profile summarised. */
async function profileScenario(ctx, scenario, runtime) {
  const dir = join(RESULTS, `cpu-${STAMP}-${scenario.name}`);
  mkdirSync(dir, { recursive: true });
  const server = await startServer('service', ctx, { cacheTtlMs: scenario.cacheTtlMs, cpuProfDir: dir, runtime });
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  let window;
  try {
    // Warm-up outside the window, then only the samples under load count.
    await runLoad(loadSpec(scenario, server, Math.max(1, WARMUP)), { resultsDir: RESULTS, generator: args.generator });
    const fromUs = nowUs();
    await runLoad(loadSpec(scenario, server, PROFILE_SECONDS), { resultsDir: RESULTS, generator: args.generator });
    window = { fromUs, toUs: nowUs() };
  } finally {
    await server.stop();
  }
  const main = readdirSync(dir).find((f) => f.includes(`.${server.pid}.0.`) && f.endsWith('.cpuprofile'));
  if (main === undefined) throw new Error(`no main-thread profile in ${dir}`);
  const path = join(RESULTS, `${scenario.name}-${STAMP}.cpuprofile`);
  renameSync(join(dir, main), path);
  // The worker threads' profiles are not summarised.
  rmSync(dir, { recursive: true, force: true });
  return { path, ...summariseProfile(path, window) };
}

// ---- SSE, WebSocket ----------------------------------------------------------------------
const BROADCAST_CHILD = new URL('./lib/broadcast.child.mjs', import.meta.url).pathname;

async function broadcast(server, mode, steps) {
  return runJsonChild(
    BROADCAST_CHILD,
    [
      JSON.stringify({
        mode,
        base: server.base,
        steps,
        messages: num('messages'),
        serverPid: server.pid,
        // The SSE publishes are POST /users: a users:write token.
        ...headersOf({ auth: 'writer' }),
      }),
    ],
    { core: 1, timeoutMs: 600_000 },
  );
}

async function streamScenarios(ctx) {
  const out = { delivery: [] };
  let shared;
  for (const mode of ['sse', 'ws']) {
    if (!wanted(mode)) continue;
    // One fresh process per kind (the smoke run shares one).
    const server = shared ?? (await startServer('service', ctx, { cacheTtlMs: 30000 }));
    if (SMOKE) shared = server;
    try {
      const n = num(mode === 'sse' ? 'sse-clients' : 'ws-clients');
      log(`${mode}: ${n} connections, ${num('messages')} messages`);
      const memory = sampleMemory(server.pid);
      const r = await broadcast(server, mode, [n]);
      out.delivery.push({ mode, peakRss: memory.stop(), ...r });
      log(
        `  ${r.results[0] === undefined ? r.stopReason : `last receipt p50 ${f1(r.results[0].lastP50)} ms, p99 ${f1(r.results[0].lastP99)} ms`}`,
      );
      await sleep(500);
    } finally {
      if (!SMOKE) await server.stop();
    }
  }
  if (shared !== undefined) await shared.stop();
  return out;
}

async function processData(ctx) {
  const child = spawnNode(
    [
      'bench/process-data.bench.mjs',
      '--clients',
      '4',
      '--seconds',
      args['process-data-seconds'],
      '--values',
      args['process-data-values'],
      '--json',
      ...(WRITE ? [] : ['--no-write']),
    ],
    // The bench database spares its app the embedded database's boot.
    {
      env: { ...process.env, DATABASE_URL: ctx.databaseUrl, AUTH_KEYS_DIR: ctx.authKeysDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (c) => (out += c.toString('utf8')));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`process-data bench exited with ${code}: ${child.stderrTail()}`);
  const lines = out.split('\n');
  const start = lines.indexOf('{');
  const end = lines.indexOf('}', start);
  return JSON.parse(lines.slice(start, end + 1).join('\n'));
}

// ---- report ------------------------------------------------------------------------------
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

// What the profiles of short scenarios showed, and what would close the gap (kept in step with the findings).
const GAP_NOTES = {
  health:
    "`/health` is a plain Fastify route writing a snapshot's prepared bytes, so what it costs is the stack every request pays. Measured on this machine (Node 24, a fixed 120-byte JSON answer, same load): node:http alone about 15 µs of CPU per request, Fastify alone about 17, Fastify with helmet's 12 headers about 22; the service's `/health` adds the request id, the AsyncLocalStorage entry, the metrics hooks, the rate limiter's rule lookup, load shedding and the Fastify adapter's own hooks (about 32 µs in all). The baseline's `/health` reads `process.memoryUsage()` and `cpuUsage()` per request (the old behaviour), which is why it is not faster.",
  'users-get':
    "Both sides send the same named prepared statement on a pg pool, so the SELECT costs the same; the difference is the per-request stack (see health: about 17 µs of Fastify, hooks and helmet's headers over node:http) plus Nest's router (execution context, `ParseIdPipe`, the response controller) and the DTO mapping. Closed here: TypeORM's query runner is gone from the read (it goes to the pool TypeORM owns), the rate limiter is a hook instead of a Nest guard, the access log is off in production, one AsyncLocalStorage entry per request, metric series bound once. The 3× FastAPI target: PostgreSQL shares the two cores with everything else, so even the no-framework baseline reaches only about 3× FastAPI's requests per second here; by CPU per request (the steadier figure) the service costs well under FastAPI's. What would close the rest: this route outside Nest (a plain Fastify route with a compiled response schema) or fewer default headers; both give up what the issue keeps.",
  'users-get-token':
    "As users-get, plus what a bearer token costs once verified: the Authorization header matched, its SHA-256 digest (the cache key, so the cache holds no usable credential) and an LRU read, in the onRequest hook before the limiter, which then charges the caller's sub instead of the address. The ES256 verification itself runs once per token.",
  'profiles-nocache':
    'Both upstream calls now go through undici directly (the @nestjs/axios layer cost 21.5% of the route; docs/ARCHITECTURE.md), in a pipeline whose deadline and attempt timeout share one controller and one timer, and the profile is serialised and encoded once. What remains over the baseline is the per-request stack (see health and users-get), the resilience pipeline per call (bulkhead, breaker, retry budget), the single-flight map and the deadline race. The p99 gap comes mostly from young-generation collections of 3-8 ms (sometimes more) every ~200 ms (`--trace-gc`), while the in-flight upstream bodies are live; the baseline holds less per request.',
  'users-post':
    "The insert is one fixed statement through TypeORM's DataSource (the query builder is gone), and the per-creation info log line is now debug (the event is on /events). What remains: class-validator and class-transformer on the DTO (about 8% of the route's CPU, `IsEmail` included), TypeORM's query runner around the pool (connect, broadcast, release: most of the `typeorm` share), the domain event to /events, and the per-request stack. A validator compiled once (a JSON-schema route schema) would close most of the rest; it belongs with the validation rules of the hardening issue. The 3× FastAPI target: the baseline itself is under 2× FastAPI here (the insert waits on PostgreSQL, which shares the two cores).",
  'profiles-cache':
    "A hit is now a synchronous Map read (no cache-manager/Keyv layers and no timeout per read in memory) that writes the stored UTF-8 bytes with their ETag. What is left is the per-request stack: the baseline's whole answer costs less CPU than the service's fixed cost (see health), plus Nest's router and `@RequestSignal()` (an AbortController per request). Closing it would mean serving hits before Nest (a Fastify `onRequest` cache hook), which bypasses the route's pipes and rules.",
};

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const errorsOf = (x) =>
  x === undefined
    ? '-'
    : `${x.errors}${x.stalledRounds > 0 ? ` (+${x.stalledRounds} stalled round${x.stalledRounds > 1 ? 's' : ''})` : ''}`;
const latency = (x) => (x === undefined ? '-' : `${f2(x.p50)} / ${f2(x.p99)}`);
const mark = (r, key) => (r.misses.some((m) => m.key === key) ? ' ⚠' : '');

function report(ctx, http, streams, pd, profiles, elapsedS, machine) {
  const lines = [HEADING, ''];
  const cmd = SMOKE ? 'npm run bench:smoke' : 'npm run bench';
  const fa = ctx.fastapi;
  const main = http.filter((r) => r.config === 'production');
  const dev = http.filter((r) => r.config === 'development');
  const targetLabel = TARGET_RUNTIME?.label ?? 'Node 24';
  lines.push(
    `Every HTTP route below served by three servers: the service as shipped for production (NestJS on Fastify, resilience policies, metrics, load shedding at its default; NODE_ENV=production with LOG_LEVEL and LOG_ACCESS unset, i.e. this build's defaults: ${ctx.logging.production}); \`bench/baseline/server.mjs\`, a no-framework node:http server with a pg Pool and undici doing the same SQL (the exact statements the service sends: its repository's read, prepared by name as the service does, and its fixed insert) and the same upstream calls; and the seed's own stack, \`bench/peers/fastapi/app.py\` (FastAPI on uvicorn with uvloop and httptools, one worker, access log off; an asyncpg pool, posts and comments fanned out by \`asyncio.gather\` through one shared httpx.AsyncClient; the baseline's SQL text and JSON shapes; no cache, so no "cache on" row). All three get the same database, pool size (DB_POOL_SIZE ${POOL}) and upstreams (64 keep-alive connections per upstream). Each scenario is measured on each Node runtime; FastAPI does not depend on it but is measured again in each runtime's group, so every ratio compares runs of the same session, in alternating rounds (p50: median of the rounds; p99: the worst round).`,
    '',
    `- Command: \`${cmd}\` (builds, then \`node bench/run.mjs${SMOKE ? ' --smoke' : ''}\`); runtimes ${RUNTIMES.map((r) => `${r.label}`).join(' and ')} (\`--runtimes ${args.runtimes}\`; Node 24 from \`scripts/node24.sh\`); ${SECONDS} s measured per side, scenario and runtime (${ROUNDS} alternating rounds of ${SECONDS / ROUNDS} s, every side running, each scenario warmed up ${WARMUP} s per side), ${CONNECTIONS} connections, ${args.generator} with one thread; whole run ${f1(elapsedS / 60)} min.`,
    `- Machine: ${machine.cpu}, ${machine.cores} cores (\`nproc\` ${machine.nproc}), ${machine.mem} GB RAM, ${machine.os}; load generator, simulator and helpers on Node ${process.version.slice(1)}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; load average before the run ${machine.load}, after it ${machine.loadAfter} (1, 5, 15 min).`,
    `- Placement: ${HAS_TASKSET ? 'the servers under test pinned to core 0 (`taskset -c 0`; only the one under load is busy); the load generator, the upstream simulator and the SSE/WebSocket clients on core 1' : 'no taskset here: nothing pinned'}; everything on loopback. Database: ${ctx.databaseKind}, seeded with ${USERS.toLocaleString('en')} users.`,
    `- FastAPI peer: ${fa.python === undefined ? peerMissing(fa) : `${fa.version} (\`${fa.python}\`), Debian's packages`}.`,
    "- Rate limiter: on, with RATE_LIMIT_RATE=1000000 and RATE_LIMIT_CAPACITY=10000000 so that it runs on every request (token bucket, RateLimit headers) but never refuses: all the load comes from one client IP. The token-carrying scenarios draw from the bucket of their token's `sub` instead, under the same budget. The shipped 100/s would answer 429 to nearly all of it.",
    `- Upstreams: the simulator (\`dist/upstream/simulator.main.js\`) with a fixed ${args['upstream-latency']} ms latency on both groups.`,
    `- CPU µs/req: the server process's CPU time (utime + stime from \`/proc/<pid>/stat\`, every thread, ${CLK_TCK} ticks/s) read just before and just after each measured round, over the requests the load generator counted. On these small, noisy 2-core machines it is the steadier figure: req/s moves with whatever else the machine is doing, the CPU each request costs much less.`,
    `- Errors are connection errors, timeouts and non-2xx answers, and a "stalled round" is a measured round without a single answer; the suite exits 1 when any scenario has either. Peak RSS is the largest VmRSS of the server process sampled every 100 ms during the scenario (the service's includes its piscina worker threads).`,
    '',
    `| scenario | runtime | service req/s | baseline req/s | FastAPI req/s | service / baseline | service / FastAPI | service p50 / p99 (ms) | baseline p50 / p99 (ms) | FastAPI p50 / p99 (ms) | CPU µs/req (service / baseline / FastAPI) | CPU service / baseline | errors (service / baseline / FastAPI) | peak RSS MB (service / baseline / FastAPI) |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  const scenarioOrder = (r) => SCENARIOS.indexOf(r.scenario) * 100 + RUNTIMES.findIndex((x) => x.key === r.runtime);
  for (const r of [...main].sort((a, b) => scenarioOrder(a) - scenarioOrder(b))) {
    const title = r.scenario.title.replace('{latency}', args['upstream-latency']);
    const { service, baseline, fastapi } = r;
    const faRps = fastapi === undefined ? (r.fastapiNote ?? '-') : f0(fastapi.rps);
    lines.push(
      `| ${title} | ${r.runtimeLabel} | ${f0(service.rps)} | ${f0(baseline.rps)} | ${faRps} | ${f2(r.vsBaseline)}${mark(r, 'vsBaseline')} | ${fastapi === undefined ? '-' : `${f2(r.vsFastapi)}${mark(r, 'vsFastapi')}`} | ${latency(service)}${mark(r, 'p99')} | ${latency(baseline)} | ${latency(fastapi)} | ${f0(service.cpuUsPerRequest)} / ${f0(baseline.cpuUsPerRequest)} / ${fastapi === undefined ? '-' : f0(fastapi.cpuUsPerRequest)} | ${f2(r.cpuRatio)} | ${errorsOf(service)} / ${errorsOf(baseline)} / ${errorsOf(fastapi)} | ${mb(service.peakRss)} / ${mb(baseline.peakRss)} / ${fastapi === undefined ? '-' : mb(fastapi.peakRss)} |`,
    );
  }
  // What a bearer token adds to a read: the same GET /users/:id with and without one, per runtime.
  for (const runtime of RUNTIMES) {
    const plain = main.find((r) => r.runtime === runtime.key && r.scenario.name === 'users-get');
    const withToken = main.find((r) => r.runtime === runtime.key && r.scenario.name === 'users-get-token');
    if (plain === undefined || withToken === undefined) continue;
    const cpu = withToken.service.cpuUsPerRequest - plain.service.cpuUsPerRequest;
    lines.push(
      '',
      `Bearer token on GET /users/:id, ${runtime.label}: ${cpu >= 0 ? '+' : ''}${f1(cpu)} µs of service CPU per request (${f0(withToken.service.cpuUsPerRequest)} with the token, ${f0(plain.service.cpuUsPerRequest)} without), ${f2(withToken.service.rps / plain.service.rps)} × the req/s; the token is verified once, then each request costs its SHA-256 digest and a cache read.`,
    );
  }
  const evaluated = main.filter((r) => r.runtime === '24');
  const short = evaluated.filter((r) => r.misses.length > 0);
  lines.push(
    '',
    `Targets, on ${targetLabel} (⚠): GET /users/:id (with and without a token), POST /users and GET /profiles/:id cache off: service ≥ ${TARGET} × baseline req/s, ≥ 3 × FastAPI req/s (profiles: ≥ 6 ×), service p99 ≤ 1.5 × baseline p99; GET /health: ≥ 3 × FastAPI req/s; GET /profiles/:id cache on: ≥ ${TARGET} × baseline req/s.`,
    '',
  );
  if (evaluated.length === 0) lines.push(`Not evaluated: ${targetLabel} was not among the runtimes of this run.`);
  else if (short.length === 0) lines.push(`Every scenario measured on ${targetLabel} meets its targets.`);
  else {
    lines.push(`Missed (${short.length} of ${evaluated.length} scenarios):`, '');
    for (const r of short) lines.push(`- ${r.scenario.name}: ${r.misses.map((m) => m.text).join('; ')}.`);
  }
  const unevaluated = evaluated.filter((r) => r.unevaluated.length > 0);
  if (unevaluated.length > 0) {
    lines.push(
      '',
      `Not evaluated: ${unevaluated.map((r) => `${r.scenario.name} ${r.unevaluated.join(', ')}`).join('; ')}.`,
    );
  }
  if (dev.length > 0) {
    lines.push(
      '',
      `### The shipped configuration with the access log on (development)`,
      '',
      `The service with NODE_ENV=development (${ctx.logging.development}), otherwise as above, against the baseline on ${dev[0].runtimeLabel}, in their own alternating rounds; the last columns repeat the production service's figures from the table above. No target.`,
      '',
      '| scenario | service req/s | baseline req/s | service / baseline | service p50 / p99 (ms) | baseline p50 / p99 (ms) | CPU µs/req (service / baseline) | CPU service / baseline | errors (service / baseline) | production service: req/s, CPU µs/req |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of dev) {
      const prod = main.find((x) => x.runtime === r.runtime && x.scenario === r.scenario);
      lines.push(
        `| ${r.scenario.title.replace('{latency}', args['upstream-latency'])} | ${f0(r.service.rps)} | ${f0(r.baseline.rps)} | ${f2(r.vsBaseline)} | ${latency(r.service)} | ${latency(r.baseline)} | ${f0(r.service.cpuUsPerRequest)} / ${f0(r.baseline.cpuUsPerRequest)} | ${f2(r.cpuRatio)} | ${errorsOf(r.service)} / ${errorsOf(r.baseline)} | ${prod === undefined ? '-' : `${f0(prod.service.rps)}, ${f0(prod.service.cpuUsPerRequest)}`} |`,
      );
    }
  }
  if (profiles.length > 0) {
    lines.push('', '### Where the time goes (CPU profiles of the scenarios under a target)', '');
    lines.push(
      `The service restarted on ${TARGET_RUNTIME?.label ?? 'Node 24'} (production configuration) with \`--cpu-prof\` for each scenario that missed a target there, and the scenario run against it (warm-up, then ${PROFILE_SECONDS} s whose samples alone are counted); the profiles (\`bench/results/<scenario>-<stamp>.cpuprofile\`, open them in Chrome DevTools) of the main thread, summarised by self time and by module on the stack (a sample counts for every package on its synchronous stack; idle excluded).`,
    );
    for (const p of profiles) {
      lines.push('', `**${p.scenario.name}** (busy ${p.busyMs.toFixed(0)} ms of samples, \`${p.path}\`)`, '');
      lines.push(
        '| module (self time) | share | module (on the stack, inclusive) | share |',
        '| --- | ---: | --- | ---: |',
      );
      for (let i = 0; i < 8; i++) {
        const m = p.modules[i];
        const inc = p.inclusive[i];
        lines.push(
          `| ${m?.name ?? ''} | ${m === undefined ? '' : `${(m.share * 100).toFixed(1)}%`} | ${inc?.name ?? ''} | ${inc === undefined ? '' : `${(inc.share * 100).toFixed(1)}%`} |`,
        );
      }
      lines.push('', 'Top functions by self time:', '');
      lines.push('| function | self time share |', '| --- | ---: |');
      for (const fn of p.functions.slice(0, 8))
        lines.push(`| \`${fn.name.replaceAll('|', '\\|')}\` | ${(fn.share * 100).toFixed(1)}% |`);
      if (GAP_NOTES[p.scenario.name] !== undefined)
        lines.push('', `What would close the gap: ${GAP_NOTES[p.scenario.name]}`);
    }
  }

  if (streams.delivery.length > 0) {
    lines.push('', '### Server-Sent Events and WebSocket delivery', '');
    lines.push(
      `On the system Node (${process.version}), one fresh service process per kind. SSE: N subscribers on \`/events?types=user.created\`; each publish is a POST /users, and the clock starts at the earlier of its response and the first receipt (the event goes out once the insert is done, before the answer), so the delay is the fan-out and its queueing, not the insert. WebSocket: N clients joined to one room; each publish is a chat message from one of them (stored, then broadcast; the clock starts at send). ${num('messages')} publishes one at a time; "last receipt" is the delay until every client had it, "all receipts" is over every (message, client) pair. No baseline.`,
      '',
      '| scenario | N | last receipt p50 / p99 (ms) | all receipts p50 / p99 (ms) | receipts / expected | peak RSS MB | RSS per connection (KiB) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const d of streams.delivery) {
      const r = d.results[0];
      if (r === undefined) {
        lines.push(`| ${d.mode} | - | failed: ${d.stopReason} | | | | |`);
        continue;
      }
      lines.push(
        `| ${d.mode === 'sse' ? 'SSE /events' : 'WebSocket /ws, one room'} | ${r.n} | ${f1(r.lastP50)} / ${f1(r.lastP99)} | ${f1(r.allP50)} / ${f1(r.allP99)} | ${r.receipts} / ${r.expectedReceipts} | ${mb(d.peakRss)} | ${f1(r.rssPerConnection / 1024)} |`,
      );
    }
    lines.push(
      '',
      'How far the connection count goes (N grown to thousands of subscribers and clients, with GET /health and the event-loop delay beside it) is its own bench: `npm run bench:connections`, section "Connection scale".',
    );
  }
  if (pd !== undefined) {
    lines.push('', '### POST /process-data with GET /health beside it', '');
    lines.push(
      `\`bench/process-data.bench.mjs\`, called by this suite on the system Node (${pd.command}): 4 clients post ${Number(args['process-data-values']).toLocaleString('en')} values back to back while a probe times GET /health, on the service's worker pool and on a baseline computing on its event loop. Its own section below has the longer run.`,
      '',
      '| side | POST /process-data ok per s | errors | GET /health p50 / p99 (ms) |',
      '| --- | ---: | ---: | ---: |',
      ...pd.results.map(
        (r) => `| ${r.side} | ${f1(r.throughput)} | ${r.errors} | ${f1(r.health.p50)} / ${f1(r.health.p99)} |`,
      ),
    );
  }
  lines.push('');
  return lines.join('\n');
}

// ---- main ----------------------------------------------------------------------------------
async function main() {
  const began = Date.now();
  const machine = describeMachine();

  log(
    `${machine.cpu}, ${machine.cores} cores, Node ${process.version}, load ${machine.load}; taskset ${HAS_TASKSET ? 'yes' : 'no'}, generator ${args.generator}, CLK_TCK ${CLK_TCK}${SMOKE ? ', SMOKE' : ''}`,
  );
  log(`runtimes: ${RUNTIMES.map((r) => `${r.label} (${r.bin})`).join(', ')}`);
  const fastapi = args['no-fastapi']
    ? { reason: 'skipped (--no-fastapi)', skipped: true }
    : SCENARIOS.some((s) => s.fastapi && wanted(s.name))
      ? findFastApi(log)
      : { reason: 'no FastAPI scenario selected', skipped: true };
  log(
    `FastAPI peer: ${fastapi.python === undefined ? peerMissing(fastapi) : `${fastapi.version} (${fastapi.python})`}`,
  );
  const logging = { production: await shippedLogging('production'), development: await shippedLogging('development') };

  const db = await setUpDatabase();
  log(`database: ${db.kind}`);
  const seed = spawnNode(['dist/database/seed.cli.js', '--users', String(USERS)], {
    env: { ...baseEnv(), DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
  });
  const seeded = await new Promise((resolve) => seed.once('exit', resolve));
  if (seeded !== 0) throw new Error(`seeding failed (${seeded}): ${seed.stderrTail()}`);
  log(`seeded ${USERS} users`);

  const upstreamPort = await freePort();
  const simulator = spawnNode(['dist/upstream/simulator.main.js'], {
    core: 1,
    env: { ...baseEnv(), UPSTREAM_PORT: String(upstreamPort), UPSTREAM_HOST: '127.0.0.1' },
  });
  cleanups.push(() => stop(simulator));
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  await waitForOk(`${upstreamUrl}/__admin/state`, simulator);
  const faults = await fetch(`${upstreamUrl}/__admin/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ group: 'all', latencyMs: num('upstream-latency'), jitterMs: 0 }),
  });
  if (!faults.ok) throw new Error(`simulator refused the latency: ${faults.status}`);

  // A fresh key for this run's tokens; every service under test is started with it.
  const authKeysDir = mkdtempSync(join(os.tmpdir(), 'bench-auth-'));
  cleanups.push(() => rmSync(authKeysDir, { recursive: true, force: true }));
  mintTokens(authKeysDir);
  log(`tokens minted (users:write and a plain reader), key in ${authKeysDir}`);

  const ctx = {
    authKeysDir,
    databaseUrl: db.url,
    databaseKind: db.kind,
    embeddedDatabase: db.kind.startsWith('embedded'),
    upstreamUrl,
    fastapi,
    logging,
    failures: [],
  };
  const http = await httpScenarios(ctx);
  const profiles = [];
  if (PROFILE_SECONDS > 0 && TARGET_RUNTIME !== undefined) {
    const short = http.filter((x) => x.misses.length > 0);
    // The smoke run profiles one, to exercise the step.
    for (const r of SMOKE ? short.slice(0, 1) : short) {
      log(`profiling ${r.scenario.name} on ${TARGET_RUNTIME.label} (${r.misses.map((m) => m.text).join('; ')})`);
      try {
        profiles.push({ scenario: r.scenario, ...(await profileScenario(ctx, r.scenario, TARGET_RUNTIME)) });
      } catch (error) {
        log(`  profile failed: ${error.message}`);
      }
    }
  }
  const streams = await streamScenarios(ctx);
  const pd = wanted('process-data') ? await processData(ctx) : undefined;
  await cleanup();

  const elapsedS = (Date.now() - began) / 1000;
  // Other work on the machine moves req/s: the load average after the run shows how much there was.
  machine.loadAfter = loadAverage();
  const section = report(ctx, http, streams, pd, profiles, elapsedS, machine);
  const runtimes = RUNTIMES.map(({ key, bin, version, label }) => ({ key, bin, version, label }));
  const json = {
    machine,
    args,
    runtimes,
    clkTck: CLK_TCK,
    fastapi,
    http,
    streams,
    processData: pd,
    profiles,
    elapsedS,
  };
  writeFileSync(join(RESULTS, SMOKE ? 'smoke.json' : `bench-${STAMP}.json`), JSON.stringify(json, null, 2));
  writeFileSync(join(RESULTS, SMOKE ? 'smoke.md' : `bench-${STAMP}.md`), section);
  process.stdout.write(`${section}\n`);
  if (WRITE) {
    writeSection(HEADING, section, { missing: 'first' });
    log('BENCHMARKS.md updated');
  }

  const failures = [
    ...ctx.failures,
    ...http.flatMap((r) =>
      SIDES.filter((side) => r[side]?.errors > 0 || r[side]?.stalledRounds > 0).map(
        (side) =>
          `${r.scenario.name} (${side}, ${r.runtimeLabel}, ${r.config}): ${r[side].errors} errors, ${r[side].stalledRounds} rounds without an answer`,
      ),
    ),
    ...streams.delivery.flatMap((d) => {
      const r = d.results[0];
      if (r === undefined) return [`${d.mode}: ${d.stopReason}`];
      return r.timeouts > 0 || r.receipts < r.expectedReceipts
        ? [`${d.mode}: ${r.expectedReceipts - r.receipts} receipts missing`]
        : [];
    }),
    ...(pd === undefined
      ? []
      : pd.results.filter((r) => r.errors > 0).map((r) => `process-data (${r.side}): ${r.errors} errors`)),
  ];
  log(`total time ${f1(elapsedS / 60)} min (${f1(elapsedS)} s)`);
  if (failures.length > 0) {
    log(`FAILED: ${failures.join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch(async (error) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await cleanup();
  process.exit(1);
});
