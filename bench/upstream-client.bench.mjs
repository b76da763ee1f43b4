// What the HTTP client layer of an upstream call costs, in CPU.
//
// 1. Client variants, in this process, against the upstream simulator
//    (`dist/upstream/simulator.main.js`, 0 ms latency) in its own process
//    pinned to the other core: N GETs of /users/:id/posts at a fixed
//    concurrency per round, rounds alternating between the variants, CPU of
//    this process (process.cpuUsage, user + system) divided by the calls:
//    - `HttpService + undici adapter`: @nestjs/axios over axios over an undici Pool;
//    - `axios + undici adapter`: the same axios instance without HttpService (rxjs);
//    - `bare undici pool.request`: Pool.request + body.json(), as the port does it;
//    each with its own Pool (connections = concurrency), a fresh AbortController
//    per call and the service's headers.
// 2. The profile route: the built service (`node dist/main.js`, pinned to core 0,
//    NODE_ENV=production, cache off, rate limiter on but never refusing), a fresh
//    PostgreSQL database seeded with 1000 users, both upstreams on a simulator;
//    autocannon (core 1) drives GET /profiles/:id with random ids, and the
//    service's CPU is read from /proc/<pid>/stat (utime + stime) around each
//    measured window. The database is dropped at the end.
//
// The report: CPU µs per call of each variant, the route's CPU µs per request,
// and the share of the route the HttpService layer costs:
// 2 calls × (HttpService + adapter − bare undici) / route CPU per request.
//
//   npm run build && node bench/upstream-client.bench.mjs
//   node bench/upstream-client.bench.mjs --calls 4000 --concurrency 16 --rounds 7 --seconds 5 --json
//   node bench/upstream-client.bench.mjs --skip-route      (client variants only)
//   node bench/upstream-client.bench.mjs --skip-clients --cpu-prof
//       (the route only, the service under --cpu-prof: its main-thread profile, kept
//        in bench/results/, summarised for the measured windows)
//   PGURL=postgres://postgres@127.0.0.1:5432/postgres      (admin connection; the default)
/* global AbortController, setTimeout */
import { HttpService } from '@nestjs/axios';
import axios, { AxiosError, AxiosHeaders } from 'axios';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { firstValueFrom } from 'rxjs';
import { Pool } from 'undici';
import { summariseProfile } from './lib/cpu-profile.mjs';
import { runLoad } from './lib/load.mjs';
import { freePort, spawnNode, stop, waitForOk } from './lib/proc.mjs';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '7' },
    seconds: { type: 'string', default: '5' },
    'route-rounds': { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    'skip-route': { type: 'boolean', default: false },
    'skip-clients': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const calls = Number(values.calls);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const routeRounds = Number(values['route-rounds']);
const connections = Number(values.connections);
const adminUrl = process.env.PGURL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round1 = (x) => Math.round(x * 10) / 10;
const log = (line) => process.stderr.write(`${line}\n`);

async function startSimulator(core) {
  const port = await freePort();
  const child = spawnNode(['dist/upstream/simulator.main.js'], {
    core,
    env: { PATH: process.env.PATH ?? '', UPSTREAM_PORT: String(port), UPSTREAM_HOST: '127.0.0.1' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForOk(`${url}/__admin/state`, child);
  return { url, child };
}

// ---------------------------------------------------------------- 1. client variants

/**
 * The axios adapter the profiles used on top of undici before this benchmark
 * decided against the HttpService layer (commit "HttpService over an axios
 * adapter on one undici Pool per upstream"): the request on the pool with the
 * config's signal, the body read and JSON-parsed, a status outside
 * validateStatus rejected as an AxiosError with `response`.
 */
function undiciAxiosAdapter(pool) {
  return async (config) => {
    const url = new URL(config.url ?? '', config.baseURL);
    let res;
    try {
      res = await pool.request({
        origin: url.origin,
        method: (config.method ?? 'get').toUpperCase(),
        path: `${url.pathname}${url.search}`,
        headers: config.headers.toJSON(true),
        ...(config.signal !== undefined ? { signal: config.signal } : {}),
      });
    } catch (error) {
      throw AxiosError.from(error, error?.code, config);
    }
    const ok = config.validateStatus == null || config.validateStatus(res.statusCode);
    let data;
    if (!ok) await res.body.dump();
    else if (config.responseType === 'json' || config.responseType === undefined) {
      const text = await res.body.text();
      data = text === '' ? undefined : JSON.parse(text);
    } else data = await res.body.text();
    const response = { data, status: res.statusCode, statusText: '', headers: new AxiosHeaders(res.headers), config };
    if (!ok) {
      const code = res.statusCode >= 500 ? AxiosError.ERR_BAD_RESPONSE : AxiosError.ERR_BAD_REQUEST;
      throw new AxiosError(`Request failed with status code ${res.statusCode}`, code, config, undefined, response);
    }
    return response;
  };
}

async function clientVariants(simUrl) {
  const headersFor = () => ({
    accept: 'application/json',
    'x-deadline-ms': '2000',
    'x-request-id': 'bench-upstream-client',
  });
  const pools = [];
  const pool = () => {
    const p = new Pool(simUrl, { connections: concurrency, pipelining: 1 });
    pools.push(p);
    return p;
  };
  const axiosInstance = () => axios.create({ adapter: undiciAxiosAdapter(pool()) });
  const http = new HttpService(axiosInstance());
  const plainAxios = axiosInstance();
  const barePool = pool();
  let id = 0;
  const nextPath = () => `/users/${String((id++ % 1000) + 1)}/posts`;
  const axiosConfig = (signal) => ({ signal, headers: headersFor(), responseType: 'json', maxRedirects: 0 });

  const variants = {
    'HttpService + undici adapter': async () => {
      const res = await firstValueFrom(http.get(`${simUrl}${nextPath()}`, axiosConfig(new AbortController().signal)));
      if (!Array.isArray(res.data)) throw new Error('not an array');
    },
    'axios + undici adapter': async () => {
      const res = await plainAxios.get(`${simUrl}${nextPath()}`, axiosConfig(new AbortController().signal));
      if (!Array.isArray(res.data)) throw new Error('not an array');
    },
    'bare undici pool.request': async () => {
      const res = await barePool.request({
        method: 'GET',
        path: nextPath(),
        headers: headersFor(),
        signal: new AbortController().signal,
      });
      if (res.statusCode !== 200) throw new Error(String(res.statusCode));
      const body = await res.body.json();
      if (!Array.isArray(body)) throw new Error('not an array');
    },
  };

  async function run(fn, n) {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        await fn();
      }
    };
    const before = process.cpuUsage();
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const cpu = process.cpuUsage(before);
    return {
      cpuUs: (cpu.user + cpu.system) / n,
      wallUs: Number(process.hrtime.bigint() - started) / 1e3 / n,
    };
  }

  for (const fn of Object.values(variants)) await run(fn, Math.min(2000, calls)); // warm-up
  const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, { cpu: [], wall: [] }]));
  for (let r = 0; r < rounds; r++) {
    // Alternate the order too, so no variant always runs right after another.
    const order = Object.entries(variants);
    if (r % 2 === 1) order.reverse();
    for (const [name, fn] of order) {
      const { cpuUs, wallUs } = await run(fn, calls);
      samples[name].cpu.push(cpuUs);
      samples[name].wall.push(wallUs);
    }
  }
  await Promise.all(pools.map((p) => p.close()));
  return Object.entries(samples).map(([variant, s]) => ({
    variant,
    cpuUsPerCall: round1(median(s.cpu)),
    wallUsPerCall: round1(median(s.wall)),
  }));
}

// ---------------------------------------------------------------- 2. the profile route

/** utime + stime of a process, in µs. */
function cpuOfPid(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may contain spaces), 1-based: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / clockTicks;
}
const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

async function profileRoute(simUrl) {
  const dbName = `bench_upstream_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  let service;
  try {
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      DATABASE_URL: dbUrl.toString(),
      POSTS_SERVICE_URL: simUrl,
      COMMENTS_SERVICE_URL: simUrl,
      PROFILE_CACHE_TTL_MS: '0',
      RATE_LIMIT_RATE: '1000000',
      RATE_LIMIT_CAPACITY: '10000000',
    };
    const seeded = spawnSync(process.execPath, ['dist/database/seed.cli.js', '--users', '1000'], {
      env,
      encoding: 'utf8',
    });
    if (seeded.status !== 0) throw new Error(`seed failed:\n${seeded.stderr}\n${seeded.stdout}`);
    const port = await freePort();
    const profDir = join('bench', 'results', `cpu-upstream-client-${process.pid}`);
    if (values['cpu-prof']) mkdirSync(profDir, { recursive: true });
    service = spawnNode(['dist/main.js'], {
      core: 0,
      env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
      nodeOptions: values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
    });
    const base = `http://127.0.0.1:${port}`;
    await waitForOk(`${base}/ready`, service);
    const spec = (s) => ({ base, kind: 'randomId', path: '/profiles/', maxId: 1000, connections, seconds: s });
    await runLoad(spec(3), { generator: 'autocannon' }); // warm-up
    const perRequest = [];
    const rps = [];
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    const fromUs = nowUs();
    for (let r = 0; r < routeRounds; r++) {
      const before = cpuOfPid(service.pid);
      const load = await runLoad(spec(seconds), { generator: 'autocannon' });
      const after = cpuOfPid(service.pid);
      if (load.errors > 0) throw new Error(`route load had ${String(load.errors)} errors`);
      perRequest.push((after - before) / load.requests);
      rps.push(load.rps);
    }
    const toUs = nowUs();
    let profile;
    if (values['cpu-prof']) {
      const pid = service.pid;
      await stop(service);
      const main = readdirSync(profDir).find((f) => f.includes(`.${pid}.0.`) && f.endsWith('.cpuprofile'));
      if (main === undefined) throw new Error(`no main-thread profile in ${profDir}`);
      const stamp = new Date().toISOString().replace(/[:.]/g, '');
      const path = join('bench', 'results', `upstream-client-route-${stamp}.cpuprofile`);
      renameSync(join(profDir, main), path);
      rmSync(profDir, { recursive: true, force: true });
      profile = { path, ...summariseProfile(path, { fromUs, toUs }, 25) };
    }
    return {
      cpuUsPerRequest: round1(median(perRequest)),
      rps: Math.round(median(rps)),
      rounds: perRequest.map(round1),
      profile,
    };
  } finally {
    if (service !== undefined) await stop(service);
    // The pool's connections close with the service; give PostgreSQL a moment to see it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

// ---------------------------------------------------------------- report

const simulator = await startSimulator(1);
let clients;
let route;
try {
  if (!values['skip-clients']) {
    log('client variants...');
    clients = await clientVariants(simulator.url);
  }
  if (!values['skip-route']) {
    log('profile route...');
    route = await profileRoute(simulator.url);
  }
} finally {
  await stop(simulator.child);
}

const cpuOf = (name) => clients?.find((c) => c.variant === name).cpuUsPerCall ?? NaN;
const layerUs = 2 * (cpuOf('HttpService + undici adapter') - cpuOf('bare undici pool.request'));
const share = route === undefined || clients === undefined ? undefined : layerUs / route.cpuUsPerRequest;
const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  calls,
  concurrency,
  rounds,
  routeSeconds: seconds,
  routeRounds,
  connections,
};
const result = {
  meta,
  clients,
  route,
  layerUsPerProfile: round1(layerUs),
  layerShareOfRoute: share === undefined ? undefined : Math.round(share * 1000) / 10,
};
if (values.json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  console.log(
    `${meta.date}  ${meta.node}  ${meta.cpu} x${meta.cores}  calls=${calls} c=${concurrency} rounds=${rounds}`,
  );
  if (clients !== undefined) {
    console.log('| client | CPU µs per call (median) | wall µs per call |');
    console.log('| --- | ---: | ---: |');
    for (const c of clients) console.log(`| ${c.variant} | ${c.cpuUsPerCall} | ${c.wallUsPerCall} |`);
  }
  if (route !== undefined) {
    console.log(
      `profile route: ${route.cpuUsPerRequest} µs CPU per request (rounds ${route.rounds.join(', ')}), ${route.rps} req/s`,
    );
  }
  if (clients !== undefined) {
    const share = result.layerShareOfRoute === undefined ? '' : ` = ${result.layerShareOfRoute}%`;
    console.log(`HttpService layer: 2 × Δ = ${result.layerUsPerProfile} µs per profile${share}`);
  }
  if (route?.profile !== undefined) {
    const { path, busyMs, functions, modules, inclusive } = route.profile;
    const pct = (x) => `${(x.share * 100).toFixed(1)}%`;
    console.log(`\nCPU profile ${path} (busy ${Math.round(busyMs)} ms in the measured windows)`);
    console.log('| module (self) | share | module (inclusive) | share |');
    console.log('| --- | ---: | --- | ---: |');
    for (let i = 0; i < 12; i++) {
      const m = modules[i];
      const n = inclusive[i];
      console.log(`| ${m?.name ?? ''} | ${m ? pct(m) : ''} | ${n?.name ?? ''} | ${n ? pct(n) : ''} |`);
    }
    console.log('| function (self) | share |');
    console.log('| --- | ---: |');
    for (const f of functions) console.log(`| \`${f.name}\` | ${pct(f)} |`);
  }
}
