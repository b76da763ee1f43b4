// HTTP load generation in a separate process pinned to core 1: wrk where it is
// installed (a C generator, so one core of load outruns one core of server),
// else autocannon in a child node process (bench/lib/autocannon.child.mjs).
// Both take the same description of a scenario and return the same summary.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAS_TASKSET, runJsonChild } from './proc.mjs';

export const HAS_WRK = spawnSync('wrk', ['-v'], { stdio: 'ignore' }).error === undefined;

/**
 * @typedef {object} LoadSpec
 * @property {string} base        e.g. http://127.0.0.1:3000
 * @property {'static'|'randomId'|'createUser'} kind
 * @property {string} path        for static; for randomId a prefix such as /users/
 * @property {number} [maxId]     randomId: ids 1..maxId
 * @property {string} [token]     createUser: makes the emails unique per run
 * @property {Record<string, string>} [headers]  sent on every request (e.g. a bearer token)
 * @property {number} connections
 * @property {number} seconds
 */

/** Runs one load and returns { generator, requests, seconds, rps, p50, p99, max, errors, non2xx }. */
export async function runLoad(spec, { core = 1, resultsDir, generator = HAS_WRK ? 'wrk' : 'autocannon' } = {}) {
  return generator === 'wrk' ? runWrk(spec, core, resultsDir) : runAutocannon(spec, core);
}

/** A Lua string literal. */
const lua = (value) => JSON.stringify(String(value));

function luaFor(spec) {
  const headers = Object.entries(spec.headers ?? {});
  // Every request carries spec.headers: wrk's own request and wrk.format without headers use wrk.headers.
  const extra = headers.map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}\n`).join('');
  const done = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%.3f,"p99":%.3f,"max":%.3f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
`;
  if (spec.kind === 'static') return `${extra}${done}`;
  if (spec.kind === 'randomId') {
    return `${extra}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "${spec.path}" .. math.random(1, ${spec.maxId}))
end
${done}`;
  }
  // createUser: unique emails per request (wrk runs one thread: one counter).
  return `
local n = 0
local headers = { ["content-type"] = "application/json"${headers.map(([k, v]) => `, [${lua(k)}] = ${lua(v)}`).join('')} }
request = function()
  n = n + 1
  local body = '{"name":"Bench User ' .. n .. '","email":"bench.${spec.token}.' .. n .. '@example.org"}'
  return wrk.format("POST", "/users", headers, body)
end
${done}`;
}

async function runWrk(spec, core, resultsDir) {
  mkdirSync(resultsDir, { recursive: true });
  const script = join(resultsDir, `wrk-${spec.kind}-${process.pid}.lua`);
  writeFileSync(script, luaFor(spec));
  const args = [
    '-t1',
    `-c${spec.connections}`,
    // wrk counts whole seconds.
    `-d${Math.max(1, Math.round(spec.seconds))}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    `${spec.base}${spec.kind === 'static' ? spec.path : '/'}`,
  ];
  const [cmd, argv] = HAS_TASKSET ? ['taskset', ['-c', String(core), 'wrk', ...args]] : ['wrk', args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c.toString('utf8')));
  child.stderr.on('data', (c) => (out += c.toString('utf8')));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  rmSync(script, { force: true });
  const line = out.split('\n').find((l) => l.startsWith('BENCHJSON '));
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (${code}):\n${out}`);
  const r = JSON.parse(line.slice('BENCHJSON '.length));
  const seconds = r.durationUs / 1e6;
  return {
    generator: 'wrk',
    requests: r.requests,
    seconds,
    rps: r.requests / seconds,
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    non2xx: r.status,
    errors: r.connect + r.read + r.write + r.status + r.timeout,
  };
}

async function runAutocannon(spec, core) {
  const script = new URL('./autocannon.child.mjs', import.meta.url).pathname;
  return runJsonChild(script, [JSON.stringify(spec)], { core, timeoutMs: (spec.seconds + 60) * 1000 });
}
