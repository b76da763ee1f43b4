// Micro-benchmark: the composed resilience pipeline (deadline → bulkhead →
// breaker → retry → attempt timeout, the deadline and the attempt sharing one
// controller and timer) around a no-op async call, without and with a caller
// signal, with a hedge that is never sent and with the adaptive limit in place
// of the bulkhead, against the bare call, in the same process and run. Rounds alternate so drift and noise
// hit both sides alike; the report gives medians and the overhead per call.
//
//   npm run bench:resilience            (builds first)
//   node bench/pipeline.bench.mjs --calls 200000 --rounds 7 --json
/* global AbortController */
import { parseArgs } from 'node:util';
import os from 'node:os';
import { ResiliencePipeline } from '../dist/resilience/pipeline.js';
import { RateLimiterPolicy } from '../dist/resilience/rate-limiter.js';
import { wrap } from '../dist/resilience/policy.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const settings = {
  breakerFailures: 5,
  breakerFailureRatio: 0.5,
  breakerMinCalls: 20,
  breakerWindowMs: 10_000,
  breakerSlowCallMs: 0,
  breakerCooldownMs: 30_000,
  breakerHalfOpenProbes: 1,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 100,
  retryMaxDelayMs: 2000,
  retryBudgetRatio: 0.2,
  timeoutMs: 2000,
  deadlineMs: 10_000,
  bulkheadMaxConcurrent: 100,
  bulkheadMaxQueue: 100,
  bulkheadQueueTimeoutMs: 1000,
};
const pipeline = new ResiliencePipeline('bench', settings);
// As shipped for posts and comments, with a fixed 10 ms delay so no hedge fires on a no-op.
const hedged = new ResiliencePipeline('bench-hedged', { ...settings, hedge: { delayMs: 10, budgetPercent: 10 } });
const adaptiveSettings = {
  minLimit: 3,
  maxLimit: 200,
  initialLimit: 20,
  smoothing: 0.2,
  tolerance: 1.5,
  windowMs: 500,
  probeIntervalMs: 60_000,
};
const adaptive = new ResiliencePipeline('bench-adaptive', { ...settings, adaptiveConcurrency: adaptiveSettings });
const both = new ResiliencePipeline('bench-both', {
  ...settings,
  hedge: { delayMs: 10, budgetPercent: 10 },
  adaptiveConcurrency: adaptiveSettings,
});
const limited = wrap(new RateLimiterPolicy({ name: 'bench-limit', ratePerSec: 1e12, capacity: 1e12 }), pipeline);
const noop = async () => 1;
// The profiles pass their round's signal: the call links to it (one fan-out entry per call).
const caller = new AbortController().signal;

async function time(run) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await run();
  return Number(process.hrtime.bigint() - start) / calls;
}

const scenarios = {
  bare: () => noop(),
  pipeline: () => pipeline.execute(noop),
  'pipeline, caller signal': () => pipeline.execute(noop, caller),
  'rate limit + pipeline': () => limited.execute(noop),
  'pipeline + hedge (none sent)': () => hedged.execute(noop),
  'pipeline, adaptive limit (not reached)': () => adaptive.execute(noop),
  'pipeline + hedge + adaptive limit, caller signal': () => both.execute(noop, caller),
};
// Warm up the JIT on every path before measuring.
for (const run of Object.values(scenarios)) for (let i = 0; i < 20_000; i++) await run();

const samples = Object.fromEntries(Object.keys(scenarios).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(scenarios)) samples[name].push(await time(run));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const bare = median(samples.bare);
const rows = Object.entries(samples).map(([name, xs]) => ({
  scenario: name,
  nsPerCall: Math.round(median(xs)),
  overheadNs: Math.round(median(xs) - bare),
  ratioToBare: Number((median(xs) / bare).toFixed(2)),
}));
const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  calls,
  rounds,
  command: `node bench/pipeline.bench.mjs --calls ${calls} --rounds ${rounds}`,
};
if (values.json) {
  console.log(JSON.stringify({ meta, rows }, null, 2));
} else {
  console.log(`${meta.date}  ${meta.node}  ${meta.cpu} x${meta.cores}  calls=${calls} rounds=${rounds}`);
  console.log('| scenario | ns per call (median) | overhead vs bare (ns) | ratio to bare |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.scenario} | ${r.nsPerCall} | ${r.overheadNs} | ${r.ratioToBare} |`);
}
