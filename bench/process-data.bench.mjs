// Load benchmark: POST /process-data on the worker pool against the same work
// on the event loop. N clients hammer POST /process-data with ~200k values
// while a probe measures GET /health latency, first against the built app
// (`node dist/main.js`, a child process), then against a baseline: a tiny
// node:http server (this file with --baseline-server, also a child process)
// that parses the JSON and runs the same computeStats on its event loop.
// Both sides run in the same invocation; the report goes to stdout and to a
// section of BENCHMARKS.md.
//
//   npm run bench:process-data          (builds first)
//   node bench/process-data.bench.mjs --clients 4 --seconds 10 --values 200000 [--no-write] [--json]
/* global fetch, AbortController */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '10' },
    values: { type: 'string', default: '200000' },
    'probe-interval-ms': { type: 'string', default: '20' },
    'baseline-server': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const HEADING = '## POST /process-data: worker pool against the event loop';

// ---- baseline server mode: the same computation on the event loop -------------
if (args['baseline-server'] !== undefined) {
  const { computeStats, validateBody } = await import('../dist/compute/stats.worker.mjs');
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (req.method !== 'POST' || req.url !== '/process-data') {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let checked;
      try {
        checked = validateBody(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!checked.ok) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify(checked));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(computeStats(checked.values)));
    });
  });
  server.listen(Number(args['baseline-server']), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else {
  await main();
}

// ---- load generator ----------------------------------------------------------
async function main() {
  const clients = Number(args.clients);
  const seconds = Number(args.seconds);
  const count = Number(args.values);
  const probeIntervalMs = Number(args['probe-interval-ms']);
  const body = JSON.stringify({
    values: Array.from({ length: count }, () => Math.round((Math.random() - 0.5) * 2e7) / 1000),
  });

  const sides = [
    {
      name: 'worker pool (the app, POST /process-data)',
      start: (port) =>
        spawn(process.execPath, ['dist/main.js'], {
          env: {
            ...process.env,
            NODE_ENV: 'production',
            HOST: '127.0.0.1',
            PORT: String(port),
            PGLITE_DATA_DIR: 'memory://',
            RATE_LIMIT_RATE: '0',
            // Its clients are anonymous: the smaller anonymous budget of this route off too.
            RATE_LIMIT_ANONYMOUS_RATE: '0',
            LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
            LOG_LEVEL: 'warn',
            LOG_ACCESS: 'false',
            WORKER_POOL_MAX_QUEUE: String(Math.max(32, clients * 2)),
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        }),
    },
    {
      name: 'event loop (baseline http server)',
      start: (port) =>
        spawn(process.execPath, [new URL(import.meta.url).pathname, '--baseline-server', String(port)], {
          stdio: ['ignore', 'inherit', 'inherit'],
        }),
    },
  ];

  const results = [];
  for (const side of sides) {
    const { child, base } = await startOnFreePort(side);
    try {
      // Warm-up: a few requests so the JIT and the workers are hot on both sides.
      for (let i = 0; i < 3; i++) await postOnce(base, body);
      results.push({ side: side.name, ...(await measure(base, body, clients, seconds * 1000, probeIntervalMs)) });
    } finally {
      await stop(child);
    }
  }

  const machine = `${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}`;
  const command = `node bench/process-data.bench.mjs --clients ${clients} --seconds ${seconds} --values ${count}`;
  if (args.json) {
    console.log(JSON.stringify({ machine, command, bodyBytes: body.length, results }, null, 2));
  }
  const table = [
    '| side | POST /process-data ok per s | errors | GET /health p50 (ms) | p99 (ms) | max (ms) | probes |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (r) =>
        `| ${r.side} | ${r.throughput.toFixed(1)} | ${r.errors} | ${r.health.p50.toFixed(1)} | ${r.health.p99.toFixed(1)} | ${r.health.max.toFixed(1)} | ${r.health.count} |`,
    ),
  ].join('\n');
  console.log(
    `\n${machine}\n${command}\nbody ${(body.length / 1e6).toFixed(1)} MB, ${clients} clients, ${seconds} s per side\n\n${table}\n`,
  );

  if (!args['no-write']) {
    const date = new Date().toISOString().slice(0, 10);
    const section = [
      HEADING,
      '',
      `While ${clients} clients send POST /process-data back to back (${count.toLocaleString('en')} values, a ${(body.length / 1e6).toFixed(1)} MB body) for ${seconds} s, a probe sends GET /health every ${probeIntervalMs} ms and times it. The app parses and computes on its piscina pool (WORKER_POOL_SIZE default: cores - 1); the baseline is a bare node:http server running the same \`computeStats\` on its event loop, measured in the same run.`,
      '',
      `- Command: \`npm run bench:process-data\` (builds, then \`${command}\`)`,
      `- Machine: ${machine}; ${date}`,
      '',
      table,
      '',
      'Throughput is bounded by the cores on both sides; the point is the event loop: on the pool, /health is answered between computations, on the baseline it waits behind whole parse + compute runs.',
      '',
    ].join('\n');
    writeSection(section);
    console.log('BENCHMARKS.md updated');
  }
}

function writeSection(section) {
  const path = 'BENCHMARKS.md';
  const text = readFileSync(path, 'utf8');
  const start = text.indexOf(HEADING);
  if (start === -1) {
    writeFileSync(path, `${text.trimEnd()}\n\n${section}`);
    return;
  }
  const next = text.indexOf('\n## ', start + HEADING.length);
  const rest = next === -1 ? '' : text.slice(next + 1);
  writeFileSync(path, `${text.slice(0, start)}${section}${rest === '' ? '' : `\n${rest}`}`);
}

async function measure(base, body, clients, durationMs, probeIntervalMs) {
  const deadline = performance.now() + durationMs;
  let ok = 0;
  let errors = 0;
  const client = async () => {
    while (performance.now() < deadline) {
      const status = await postOnce(base, body);
      if (status === 200) ok++;
      else errors++;
    }
  };
  const latencies = [];
  const probe = async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const res = await fetch(`${base}/health`);
      await res.arrayBuffer();
      latencies.push(performance.now() - started);
      await sleep(probeIntervalMs);
    }
  };
  const started = performance.now();
  await Promise.all([...Array.from({ length: clients }, client), probe()]);
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const rank = (p) => latencies[Math.max(1, Math.ceil((p * latencies.length) / 100)) - 1] ?? NaN;
  return {
    throughput: ok / elapsedS,
    ok,
    errors,
    health: { count: latencies.length, p50: rank(50), p99: rank(99), max: latencies.at(-1) ?? NaN },
  };
}

async function postOnce(base, body) {
  try {
    const res = await fetch(`${base}/process-data`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function freePort() {
  const server = createNetServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts a side on a free port, again on another if it exits at start-up: the
 * port is free when picked but not reserved, and the app's own embedded database
 * (listening on port 0) can be handed the same one first.
 */
async function startOnFreePort(side, attempts = 3) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = side.start(port);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForHealth(base, child);
      return { child, base };
    } catch (error) {
      const exitedAtStart = child.exitCode !== null;
      await stop(child);
      if (attempt >= attempts || !exitedAtStart) throw error;
      console.error(`${side.name}: start-up failed on port ${port} (${error.message}); trying another port`);
    }
  }
}

async function waitForHealth(base, child) {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${base} did not become healthy in 30 s`);
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const killed = new AbortController();
  sleep(10_000, undefined, { signal: killed.signal }).then(
    () => child.kill('SIGKILL'),
    () => {},
  );
  await exited;
  killed.abort();
}
