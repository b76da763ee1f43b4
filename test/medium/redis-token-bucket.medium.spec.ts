import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import { createClient } from 'redis';

import type { Clock } from '../../src/resilience/clock.js';
import { LocalTokenBucketStore, type TakeResult } from '../../src/resilience/rate-limiter.js';
import {
  RedisTokenBucketStore,
  TOKEN_BUCKET_LUA,
  TOKEN_BUCKET_LUA_SHA1,
  type RedisFallbackEvent,
  type RedisRecoverEvent,
  type RedisScriptClient,
} from '../../src/resilience/redis-token-bucket.store.js';
import { isTimeoutError } from '../../src/resilience/resilience.errors.js';
import { take, type BucketLimits, type BucketState } from '../../src/resilience/token-bucket.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) console.warn('[skip] Redis token-bucket tests: REDIS_URL not set');
const describeRedis = redisUrl ? describe : describe.skip;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

type Client = ReturnType<typeof createClient>;

/** A client that fails fast and never retries on its own: tests must not hang or spam reconnects. */
async function connect(url: string, reconnect: false | number = false): Promise<Client> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 1_000,
      // A number: retry that often, but give up after 100 tries so nothing lingers.
      reconnectStrategy: reconnect === false ? false : (retries) => (retries > 100 ? false : reconnect),
    },
  });
  client.on('error', () => undefined); // expected while a test cuts the connection
  await client.connect();
  return client;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class ManualClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
}

const withoutSource = ({ allowed, remaining, retryAfterMs, resetMs }: TakeResult) => ({
  allowed,
  remaining,
  retryAfterMs,
  resetMs,
});

/**
 * Run by each child process: connects, says "ready", reads the common start
 * time from stdin, then hammers one key with the store's Lua script for
 * `durationMs` and prints what it got as JSON.
 */
const CHILD_SOURCE = `
import { once } from 'node:events';
import { createClient } from 'redis';
const { url, key, script, sha, args, durationMs, concurrency } = JSON.parse(process.env.RL_CHILD);
const client = createClient({ url, socket: { reconnectStrategy: false } });
client.on('error', () => undefined);
await client.connect();
await client.scriptLoad(script);
process.stdout.write('ready\\n');
const [line] = await once(process.stdin, 'data');
process.stdin.destroy();
const startAt = Number(String(line));
while (Date.now() < startAt) await new Promise((resolve) => setTimeout(resolve, 1));
let allowed = 0;
let denied = 0;
let lastReplyAt = 0;
const worker = async () => {
  while (Date.now() < startAt + durationMs) {
    const call = { keys: [key], arguments: args };
    // Another suite may flush the server's scripts meanwhile: EVAL loads it again, as the store does.
    const [ok] = await client.evalSha(sha, call).catch((error) => {
      if (String(error?.message).startsWith('NOSCRIPT')) return client.eval(script, call);
      throw error;
    });
    lastReplyAt = Date.now();
    if (ok === 1) allowed++;
    else denied++;
  }
};
await Promise.all(Array.from({ length: concurrency }, worker));
await client.close();
process.stdout.write(JSON.stringify({ allowed, denied, lastReplyAt }) + '\\n');
`;

interface ChildReport {
  allowed: number;
  denied: number;
  lastReplyAt: number;
}

interface Child {
  /** Resolves once the child is connected and waits for the start time. */
  readonly ready: Promise<void>;
  start(startAt: number): void;
  readonly report: Promise<ChildReport>;
  /** Kills the child if it still runs. */
  stop(): void;
}

function spawnChild(config: Record<string, unknown>): Child {
  const { NODE_OPTIONS: _jestOnly, ...env } = process.env;
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SOURCE], {
    cwd: repoRoot,
    env: { ...env, RL_CHILD: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const report = new Promise<ChildReport>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code === 0) resolve(JSON.parse(last) as ChildReport);
      else reject(new Error(`child exited with ${String(code)}: ${stderr}`));
    });
  });
  report.catch(() => undefined); // surfaced by whoever awaits it; never unhandled
  return {
    // A child that dies before "ready" fails the test instead of hanging it.
    ready: Promise.race([ready, report.then(() => undefined)]),
    start: (startAt) => child.stdin.end(`${String(startAt)}\n`),
    report,
    stop: () => {
      if (child.exitCode === null) child.kill();
    },
  };
}

describeRedis('RedisTokenBucketStore on a real Redis', () => {
  const url = redisUrl ?? '';
  let client: Client;
  let prefix: string;

  beforeAll(async () => {
    client = await connect(url);
  });

  afterEach(async () => {
    // Every test uses its own prefix; remove what it left.
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await client.del(keys);
    }
  });

  afterAll(async () => {
    await client.close();
  });

  const newPrefix = (): string => (prefix = `test:rl:${randomUUID()}:`);

  it('gives the same answers as the local store for the same timestamps', async () => {
    newPrefix();
    let run = 0;
    let denials = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          limits: fc.record({
            ratePerSec: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0.05, max: 2_000, noNaN: true })),
            capacity: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0.5, max: 20, noNaN: true })),
          }),
          // An epoch-sized start, as Redis TIME gives, sometimes with a fraction.
          startMs: fc.oneof(fc.constant(1_700_000_000_000), fc.double({ min: 1.6e12, max: 1.8e12, noNaN: true })),
          requests: fc.array(
            fc.record({
              // Mostly bursts, which drain buckets, with some pauses, which refill them.
              stepMs: fc.oneof(
                { arbitrary: fc.constant(0), weight: 3 },
                { arbitrary: fc.integer({ min: 0, max: 40 }), weight: 4 },
                { arbitrary: fc.integer({ min: 0, max: 3_000 }), weight: 1 },
                { arbitrary: fc.double({ min: 0, max: 500, noNaN: true }), weight: 1 },
              ),
              costShare: fc.oneof(fc.constant(-1), fc.double({ min: 0, max: 1, noNaN: true })),
            }),
            { minLength: 1, maxLength: 60, size: 'medium' },
          ),
        }),
        async ({ limits, startMs, requests }) => {
          const key = `same-${String(run++)}`;
          const clock = new ManualClock(startMs);
          const local = new LocalTokenBucketStore({ ...limits, clock });
          const redis = new RedisTokenBucketStore({
            client,
            fallback: new LocalTokenBucketStore(limits),
            keyPrefix: prefix,
            timeoutMs: 2_000,
            scriptClock: clock,
          });
          let state: BucketState | undefined;
          for (const { stepMs, costShare } of requests) {
            clock.t += stepMs;
            const cost = costShare < 0 ? Math.min(1, limits.capacity) : costShare * limits.capacity;
            const fromRedis = await redis.take(key, cost);
            const fromLocal = local.takeSync(key, cost);
            expect(fromRedis.source).toBe('redis');
            expect(withoutSource(fromRedis)).toEqual(withoutSource(fromLocal));
            if (!fromRedis.allowed) denials++;
            // The stored state is bit-identical to the pure function's, not just the rounded answers.
            state = take(state, clock.t, limits, cost).state;
            const [tokens, updatedAtMs] = await client.hmGet(prefix + key, ['t', 'u']);
            expect({ tokens: Number(tokens), updatedAtMs: Number(updatedAtMs) }).toEqual(state);
          }
        },
      ),
      { numRuns: 30 },
    );
    expect(denials).toBeGreaterThan(20); // the scenarios do drain buckets
  });

  it('keeps time by the Redis server clock, in a hash with a TTL of the time to refill plus the margin', async () => {
    newPrefix();
    const limits: BucketLimits = { ratePerSec: 10, capacity: 3 };
    const store = new RedisTokenBucketStore({
      client,
      fallback: new LocalTokenBucketStore(limits),
      keyPrefix: prefix,
      ttlMarginMs: 1_000,
    });
    for (let i = 0; i < 3; i++) expect(await store.take('user:1')).toMatchObject({ allowed: true, source: 'redis' });
    const denied = await store.take('user:1');
    expect(denied).toMatchObject({ allowed: false, remaining: 0, source: 'redis' });
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(100);

    expect(await client.hKeys(`${prefix}user:1`)).toEqual(['t', 'u']);
    const ttl = await client.pTTL(`${prefix}user:1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(denied.resetMs + 1_000);

    await sleep(denied.retryAfterMs + 5);
    expect(await store.take('user:1')).toMatchObject({ allowed: true, source: 'redis' });
    expect(store.snapshot()).toMatchObject({ degraded: false, redisAnswers: 5, localAnswers: 0, failures: 0 });
  });

  it('lets idle keys expire once the bucket would be full again', async () => {
    newPrefix();
    const store = new RedisTokenBucketStore({
      client,
      fallback: new LocalTokenBucketStore({ ratePerSec: 100, capacity: 1 }),
      keyPrefix: prefix,
      ttlMarginMs: 0,
    });
    const taken = await store.take('idle');
    expect(taken.resetMs).toBeLessThanOrEqual(10);
    await sleep(60);
    expect(await client.exists(`${prefix}idle`)).toBe(0);
  });

  it('falls back to EVAL after NOSCRIPT, which caches the script under its SHA1', async () => {
    newPrefix();
    let evals = 0;
    const forgetful: RedisScriptClient = {
      // An unknown SHA1 gets the server's real NOSCRIPT error.
      evalSha: (_sha, options) => client.evalSha('0'.repeat(40), options),
      eval: (script, options) => {
        evals++;
        return client.eval(script, options);
      },
    };
    const store = new RedisTokenBucketStore({
      client: forgetful,
      fallback: new LocalTokenBucketStore({ ratePerSec: 1, capacity: 1 }),
      keyPrefix: prefix,
    });
    expect(await store.take('k')).toMatchObject({ allowed: true, source: 'redis' });
    expect(await store.take('k')).toMatchObject({ allowed: false, source: 'redis' });
    expect(evals).toBe(2);
    expect(await client.scriptExists(TOKEN_BUCKET_LUA_SHA1)).toEqual([1]);
  });

  it('never exceeds one budget across two processes hammering the same key', async () => {
    newPrefix();
    const ratePerSec = 50;
    const capacity = 10;
    const config = {
      url,
      key: `${prefix}shared`,
      script: TOKEN_BUCKET_LUA,
      sha: TOKEN_BUCKET_LUA_SHA1,
      args: [String(ratePerSec), String(capacity), '1', '1000', ''],
      durationMs: 1_000,
      concurrency: 4,
    };
    const children = [spawnChild(config), spawnChild(config)];
    let startAt: number;
    let reports: ChildReport[];
    try {
      await Promise.all(children.map((child) => child.ready));
      startAt = Date.now() + 50;
      for (const child of children) child.start(startAt);
      reports = await Promise.all(children.map((child) => child.report));
    } finally {
      for (const child of children) child.stop();
    }

    const admitted = reports.reduce((sum, r) => sum + r.allowed, 0);
    const denied = reports.reduce((sum, r) => sum + r.denied, 0);
    const lastReplyAt = Math.max(...reports.map((r) => r.lastReplyAt));
    // The bucket was created, full, by a request at or after startAt; the last one ran before lastReplyAt.
    // +1: the script counts whole server milliseconds.
    const budget = capacity + (ratePerSec * (lastReplyAt - startAt)) / 1000 + 1;
    expect(admitted).toBeLessThanOrEqual(budget);
    // And it really was contended: the burst and some refill were admitted, far more was refused.
    expect(admitted).toBeGreaterThan(capacity);
    expect(denied).toBeGreaterThan(admitted);
    for (const report of reports) expect(report.allowed + report.denied).toBeGreaterThan(50);
  });

  it('answers locally while Redis is unreachable and switches back when it answers again', async () => {
    newPrefix();
    const target = new URL(url);
    const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    const port = await proxy.start();
    const proxied = await connect(`redis://${target.hostname}:${String(port)}`, 20);
    try {
      const limits: BucketLimits = { ratePerSec: 0.001, capacity: 5 }; // no refill within the test
      const store = new RedisTokenBucketStore({
        client: proxied,
        fallback: new LocalTokenBucketStore(limits),
        keyPrefix: prefix,
        probeIntervalMs: 0,
      });
      const fallbacks: RedisFallbackEvent[] = [];
      const recoveries: RedisRecoverEvent[] = [];
      store.onFallback((event) => fallbacks.push(event));
      store.onRecover((event) => recoveries.push(event));

      expect(await store.take('k')).toMatchObject({ source: 'redis', remaining: 4 });

      await proxy.cut();
      const during = await store.take('k');
      expect(during).toMatchObject({ allowed: true, source: 'local', remaining: 4 }); // its own, full bucket
      expect(store.degraded).toBe(true);
      expect(fallbacks).toHaveLength(1);
      expect(fallbacks[0]?.key).toBe('k');

      await proxy.restore();
      for (let i = 0; i < 200 && !proxied.isReady; i++) await sleep(10);
      expect(proxied.isReady).toBe(true);

      const after = await store.take('k');
      expect(after).toMatchObject({ source: 'redis', remaining: 3 }); // the shared bucket, as Redis kept it
      expect(store.degraded).toBe(false);
      expect(recoveries).toHaveLength(1);
      expect(store.snapshot()).toMatchObject({ redisAnswers: 2, localAnswers: 1, failures: 1 });
    } finally {
      proxied.destroy();
      await proxy.cut();
    }
  });
});

describe('RedisTokenBucketStore when Redis fails', () => {
  const limits: BucketLimits = { ratePerSec: 1, capacity: 2 };

  it('answers from the local bucket when Redis is not there, flags degraded, emits onFallback, never throws', async () => {
    // Nothing listens on port 1: connecting fails at once and, with retries off, the client stays closed.
    const client = createClient({
      url: 'redis://127.0.0.1:1',
      disableOfflineQueue: true,
      socket: { reconnectStrategy: false, connectTimeout: 500 },
    });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow();

    const logged: unknown[] = [];
    const store = new RedisTokenBucketStore({
      client,
      fallback: new LocalTokenBucketStore(limits),
      probeIntervalMs: 0,
      onFallback: (error) => logged.push(error),
    });
    const events: RedisFallbackEvent[] = [];
    store.onFallback((event) => events.push(event));

    const results = [await store.take('k'), await store.take('k'), await store.take('k')];
    expect(results.map((r) => [r.allowed, r.source])).toEqual([
      [true, 'local'],
      [true, 'local'],
      [false, 'local'],
    ]);
    expect(results[2]?.retryAfterMs).toBeGreaterThan(0);
    expect(store.degraded).toBe(true);
    expect(events).toHaveLength(3);
    expect(logged).toHaveLength(3);
    expect(events[0]?.error).toBeInstanceOf(Error);
    expect(store.snapshot()).toMatchObject({ degraded: true, redisAnswers: 0, localAnswers: 3, failures: 3 });
    expect(store.snapshot().degradedSinceMs).toEqual(expect.any(Number));
  });

  it('gives up on a Redis that does not answer after timeoutMs', async () => {
    const hanging: RedisScriptClient = {
      evalSha: () => new Promise(() => undefined),
      eval: () => new Promise(() => undefined),
    };
    const store = new RedisTokenBucketStore({
      client: hanging,
      fallback: new LocalTokenBucketStore(limits),
      timeoutMs: 30,
    });
    const events: RedisFallbackEvent[] = [];
    store.onFallback((event) => events.push(event));

    const started = performance.now();
    const result = await store.take('k');
    const tookMs = performance.now() - started;
    expect(result).toMatchObject({ allowed: true, source: 'local' });
    expect(tookMs).toBeGreaterThanOrEqual(25);
    expect(tookMs).toBeLessThan(1_000);
    expect(isTimeoutError(events[0]?.error)).toBe(true);
  });

  it('while degraded, probes Redis once per probeIntervalMs and answers locally in between', async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    let healthy = false;
    const flaky: RedisScriptClient = {
      evalSha: () => {
        calls++;
        return healthy ? Promise.resolve([1, 9, 0, 100]) : Promise.reject(new Error('READONLY'));
      },
      eval: () => Promise.reject(new Error('unexpected EVAL')),
    };
    const store = new RedisTokenBucketStore({
      client: flaky,
      fallback: new LocalTokenBucketStore({ ratePerSec: 1, capacity: 10, clock }),
      clock,
      probeIntervalMs: 1_000,
    });
    const recoveries: RedisRecoverEvent[] = [];
    store.onRecover((event) => recoveries.push(event));

    expect(await store.take('k')).toMatchObject({ source: 'local' });
    expect(calls).toBe(1);
    clock.t = 999;
    expect(await store.take('k')).toMatchObject({ source: 'local' });
    expect(calls).toBe(1); // not asked again yet
    clock.t = 1_000;
    expect(await store.take('k')).toMatchObject({ source: 'local' });
    expect(calls).toBe(2); // the probe, failed again

    healthy = true;
    clock.t = 1_500;
    expect(await store.take('k')).toMatchObject({ source: 'local' });
    expect(calls).toBe(2);
    clock.t = 2_000;
    expect(await store.take('k')).toEqual({
      allowed: true,
      remaining: 9,
      retryAfterMs: 0,
      resetMs: 100,
      source: 'redis',
    });
    expect(recoveries).toEqual([{ degradedForMs: 2_000 }]);
    expect(store.degraded).toBe(false);
    expect(await store.take('k')).toMatchObject({ source: 'redis' });
    expect(calls).toBe(4);
  });

  it('sends only one probe at a time', async () => {
    const clock = new ManualClock(0);
    let calls = 0;
    let release: (reply: unknown) => void = () => undefined;
    const slow: RedisScriptClient = {
      evalSha: () => {
        calls++;
        if (calls === 1) return Promise.reject(new Error('down'));
        return new Promise((resolve) => (release = resolve));
      },
      eval: () => Promise.reject(new Error('unexpected EVAL')),
    };
    const store = new RedisTokenBucketStore({
      client: slow,
      fallback: new LocalTokenBucketStore({ ratePerSec: 1, capacity: 10, clock }),
      clock,
      probeIntervalMs: 0,
      timeoutMs: 5_000,
    });
    await store.take('k'); // degrades
    const probe = store.take('k');
    expect(await store.take('k')).toMatchObject({ source: 'local' }); // while the probe is out
    expect(calls).toBe(2);
    release([0, 0, 500, 1_000]);
    expect(await probe).toMatchObject({ allowed: false, retryAfterMs: 500, source: 'redis' });
  });

  it('treats a malformed reply as a failure', async () => {
    const odd: RedisScriptClient = {
      evalSha: () => Promise.resolve('OK'),
      eval: () => Promise.resolve('OK'),
    };
    const store = new RedisTokenBucketStore({ client: odd, fallback: new LocalTokenBucketStore(limits) });
    expect(await store.take('k')).toMatchObject({ source: 'local' });
    expect(store.snapshot().lastError).toBeInstanceOf(TypeError);
  });

  it('rejects an invalid cost and invalid options', async () => {
    const client: RedisScriptClient = { evalSha: () => Promise.resolve([]), eval: () => Promise.resolve([]) };
    const fallback = new LocalTokenBucketStore(limits);
    const store = new RedisTokenBucketStore({ client, fallback });
    await expect(store.take('k', 3)).rejects.toThrow(RangeError);
    expect(() => new RedisTokenBucketStore({ client, fallback, timeoutMs: 0 })).toThrow(RangeError);
    expect(() => new RedisTokenBucketStore({ client, fallback, ttlMarginMs: 1.5 })).toThrow(RangeError);
    expect(() => new RedisTokenBucketStore({ client, fallback, probeIntervalMs: -1 })).toThrow(RangeError);
    expect(() => new RedisTokenBucketStore({ client, fallback, limits: { ratePerSec: 1, capacity: 0 } })).toThrow(
      RangeError,
    );
  });

  it('asks a smaller fallback bucket for at most its capacity', async () => {
    const down: RedisScriptClient = {
      evalSha: () => Promise.reject(new Error('down')),
      eval: () => Promise.reject(new Error('down')),
    };
    const store = new RedisTokenBucketStore({
      client: down,
      fallback: new LocalTokenBucketStore({ ratePerSec: 1, capacity: 2 }),
      limits: { ratePerSec: 10, capacity: 20 },
    });
    expect(store.limits).toEqual({ ratePerSec: 10, capacity: 20 });
    expect(await store.take('k', 15)).toMatchObject({ allowed: true, remaining: 0, source: 'local' });
  });
});
