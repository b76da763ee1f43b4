import { createHash } from 'node:crypto';

import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';
import type { RateLimiterStore, TakeResult } from './rate-limiter.js';
import { TimeoutError } from './resilience.errors.js';
import { assertBucketLimits, assertCost, TOKEN_EPSILON, type BucketLimits } from './token-bucket.js';

/**
 * The token bucket as one atomic Lua script: a line-by-line port of
 * `take()` in token-bucket.ts (same float operations in the same order, same
 * epsilon), so Redis and the local store agree to the bit on equal timestamps.
 *
 * - `KEYS[1]`: the bucket, a hash `{ t = tokens, u = updatedAtMs }` (doubles
 *   written with `%.17g`, which round-trips exactly).
 * - `ARGV[1]` ratePerSec, `ARGV[2]` capacity, `ARGV[3]` cost, `ARGV[4]` TTL
 *   margin in whole ms, `ARGV[5]` nowMs, or `''` to read the server's `TIME`
 *   (whole ms), the one clock every instance shares.
 * - Returns `{ allowed (1|0), remaining, retryAfterMs, resetMs }`, all whole
 *   numbers (a Lua `false` would truncate the reply, hence 1|0).
 * - The key expires `resetMs + margin` ms after each request: by then the
 *   bucket is full again, which is what a missing key means.
 *
 * `TIME` before a write is fine: scripts replicate their effects (the default
 * since Redis 5, the only mode since 7), not the script itself.
 *
 * @publicApi
 */
export const TOKEN_BUCKET_LUA = `
local EPS = ${String(TOKEN_EPSILON)}
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
local now
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function refill(tokens, elapsed)
  return math.min(capacity, tokens + (elapsed * rate) / 1000)
end

local function ms_until(tokens, target)
  if tokens + EPS >= target then return 0 end
  local ms = math.ceil(((target - tokens) * 1000) / rate)
  while ms > 0 and refill(tokens, ms - 1) + EPS >= target do ms = ms - 1 end
  while refill(tokens, ms) + EPS < target do ms = ms + 1 end
  return ms
end

local saved = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(saved[1])
local updated = tonumber(saved[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
else
  tokens = math.min(capacity, math.max(0, tokens))
  if now > updated then
    tokens = refill(tokens, now - updated)
    updated = now
  end
end

local allowed = tokens + EPS >= cost
if allowed then tokens = math.max(0, tokens - cost) end
local lag = math.ceil(updated - now)
local retry = 0
if not allowed then retry = lag + ms_until(tokens, cost) end
local reset = lag + ms_until(tokens, capacity)

redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'u', string.format('%.17g', updated))
redis.call('PEXPIRE', KEYS[1], reset + margin)
return { allowed and 1 or 0, math.floor(tokens + EPS), retry, reset }
`;

/** SHA1 of {@link TOKEN_BUCKET_LUA}, the name `EVALSHA` knows it by. */
export const TOKEN_BUCKET_LUA_SHA1 = createHash('sha1').update(TOKEN_BUCKET_LUA).digest('hex');

/** Options of `EVAL`/`EVALSHA` as node-redis 5 takes them. */
export interface RedisEvalOptions {
  keys: string[];
  arguments: string[];
}

/**
 * The two commands the store needs; a node-redis 5 client (`createClient()`)
 * fits as is. For fast fallback, create it with `disableOfflineQueue: true`
 * (commands fail at once while disconnected instead of queueing).
 */
export interface RedisScriptClient {
  evalSha(sha1: string, options: RedisEvalOptions): Promise<unknown>;
  eval(script: string, options: RedisEvalOptions): Promise<unknown>;
}

export interface RedisTokenBucketStoreOptions {
  /** A connected client, owned by the caller (the store never connects or quits it). */
  readonly client: RedisScriptClient;
  /**
   * Answers while Redis is failing or slow. It limits this process only, so
   * with N instances up to N budgets pass during an outage: give it smaller
   * limits (e.g. the shared ones divided by N) if that matters.
   */
  readonly fallback: RateLimiterStore;
  /** Limits of the shared buckets; default `fallback.limits`. */
  readonly limits?: BucketLimits;
  /** Prepended to every key; default `'ratelimit:'`. */
  readonly keyPrefix?: string;
  /** Longest wait for Redis per request, in ms (> 0); default 100. */
  readonly timeoutMs?: number;
  /** Extra lifetime of a key beyond the time to refill fully, in whole ms; default 1000. */
  readonly ttlMarginMs?: number;
  /**
   * While degraded, ask Redis again (one request at a time) at most this often,
   * in ms; every other request goes straight to the fallback. 0: try Redis on
   * every request. Default 1000.
   */
  readonly probeIntervalMs?: number;
  /** Shorthand for subscribing to {@link RedisTokenBucketStore.onFallback}. */
  readonly onFallback?: (error: unknown) => void;
  /** Times degradation and probes; defaults to `performance.now()`. */
  readonly clock?: Clock;
  /**
   * Sends this clock's time to the script instead of using Redis `TIME`. For
   * tests; every process sharing the keys would have to share the clock.
   */
  readonly scriptClock?: Clock;
}

/** Payload of {@link RedisTokenBucketStore.onFallback}. */
export interface RedisFallbackEvent {
  /** Why Redis did not answer: its error, or a `TimeoutError`. */
  readonly error: unknown;
  readonly key: string;
}

/** Payload of {@link RedisTokenBucketStore.onRecover}. */
export interface RedisRecoverEvent {
  /** How long requests were answered by the fallback. */
  readonly degradedForMs: number;
}

/** What {@link RedisTokenBucketStore.snapshot} reports, e.g. for health or metrics. */
export interface RedisTokenBucketSnapshot {
  /** Whether the last Redis attempt failed (answers come from the fallback). */
  readonly degraded: boolean;
  /** Since when (store clock) degraded; undefined when healthy. */
  readonly degradedSinceMs: number | undefined;
  /** The last Redis failure, if any since creation. */
  readonly lastError: unknown;
  /** Requests answered by Redis / by the fallback, and Redis attempts that failed. */
  readonly redisAnswers: number;
  readonly localAnswers: number;
  readonly failures: number;
}

const DEFAULT_KEY_PREFIX = 'ratelimit:';
const DEFAULT_TIMEOUT_MS = 100;
const DEFAULT_TTL_MARGIN_MS = 1_000;
const DEFAULT_PROBE_INTERVAL_MS = 1_000;
/** Largest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2_147_483_647;
const OWNER = 'RedisTokenBucketStore';

const isNoScriptError = (error: unknown): boolean => error instanceof Error && error.message.startsWith('NOSCRIPT');

function parseReply(reply: unknown): Omit<TakeResult, 'source'> {
  if (Array.isArray(reply) && reply.length === 4 && reply.every((value) => typeof value === 'number')) {
    const [allowed, remaining, retryAfterMs, resetMs] = reply as [number, number, number, number];
    return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
  }
  throw new TypeError(`unexpected reply from the token-bucket script: ${JSON.stringify(reply)}`);
}

/**
 * Token buckets shared through Redis, so every instance draws on one budget.
 * Each request is one atomic `EVALSHA` of {@link TOKEN_BUCKET_LUA} (falling
 * back to `EVAL`, which also caches the script, after `NOSCRIPT`), timed by
 * the Redis server's clock.
 *
 * It never throws for Redis trouble: when Redis errors or takes longer than
 * `timeoutMs`, the request is answered by the `fallback` store
 * (`source: 'local'`), `onFallback` fires and the store is `degraded`; while
 * degraded it probes Redis every `probeIntervalMs` and switches back
 * (`onRecover`, `source: 'redis'`) as soon as Redis answers. A timed-out
 * script may still run later and spend a shared token: that errs on the
 * strict side.
 *
 * @example
 * const client = createClient({ url, disableOfflineQueue: true });
 * client.on('error', (error) => logger.warn(error));
 * await client.connect();
 * const store = new RedisTokenBucketStore({
 *   client,
 *   fallback: new LocalTokenBucketStore({ ratePerSec: 100, capacity: 200 }),
 *   onFallback: (error) => logger.warn({ error }, 'rate limiter on local buckets'),
 * });
 * @publicApi
 */
export class RedisTokenBucketStore implements RateLimiterStore {
  readonly limits: BucketLimits;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly ttlMarginMs: number;
  readonly probeIntervalMs: number;

  private readonly client: RedisScriptClient;
  private readonly fallback: RateLimiterStore;
  private readonly clock: Clock;
  private readonly scriptClock: Clock | undefined;

  private degradedSince: number | undefined;
  private nextProbeAt = 0;
  private probing = false;
  private lastError: unknown;
  private redisAnswers = 0;
  private localAnswers = 0;
  private failures = 0;

  private readonly fallbackEmitter = new EventEmitter<RedisFallbackEvent>();
  private readonly recoverEmitter = new EventEmitter<RedisRecoverEvent>();

  /** Fires for every Redis attempt that failed or timed out (the request was answered locally). */
  readonly onFallback: Event<RedisFallbackEvent> = this.fallbackEmitter.event;
  /** Fires when Redis answers again after being degraded. */
  readonly onRecover: Event<RedisRecoverEvent> = this.recoverEmitter.event;

  constructor(options: RedisTokenBucketStoreOptions) {
    const {
      timeoutMs = DEFAULT_TIMEOUT_MS,
      ttlMarginMs = DEFAULT_TTL_MARGIN_MS,
      probeIntervalMs = DEFAULT_PROBE_INTERVAL_MS,
    } = options;
    const limits = options.limits ?? options.fallback.limits;
    assertBucketLimits(limits, OWNER);
    if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
      throw new RangeError(`timeoutMs of ${OWNER} must be in (0, ${String(MAX_TIMER_MS)}], got ${String(timeoutMs)}`);
    }
    if (!Number.isSafeInteger(ttlMarginMs) || ttlMarginMs < 0) {
      throw new RangeError(`ttlMarginMs of ${OWNER} must be an integer >= 0, got ${String(ttlMarginMs)}`);
    }
    if (!(probeIntervalMs >= 0 && Number.isFinite(probeIntervalMs))) {
      throw new RangeError(`probeIntervalMs of ${OWNER} must be finite and >= 0, got ${String(probeIntervalMs)}`);
    }
    this.limits = { ratePerSec: limits.ratePerSec, capacity: limits.capacity };
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.timeoutMs = timeoutMs;
    this.ttlMarginMs = ttlMarginMs;
    this.probeIntervalMs = probeIntervalMs;
    this.client = options.client;
    this.fallback = options.fallback;
    this.clock = options.clock ?? systemClock;
    this.scriptClock = options.scriptClock;
    const { onFallback } = options;
    if (onFallback !== undefined) {
      this.onFallback(({ error }) => {
        onFallback(error);
      });
    }
  }

  /** Whether requests are currently answered by the fallback. */
  get degraded(): boolean {
    return this.degradedSince !== undefined;
  }

  snapshot(): RedisTokenBucketSnapshot {
    return {
      degraded: this.degraded,
      degradedSinceMs: this.degradedSince,
      lastError: this.lastError,
      redisAnswers: this.redisAnswers,
      localAnswers: this.localAnswers,
      failures: this.failures,
    };
  }

  /** Rejects only for an invalid `cost` (`RangeError`), never for Redis trouble. */
  async take(key: string, cost = 1): Promise<TakeResult> {
    assertCost(cost, this.limits, OWNER);
    let probe = false;
    if (this.degradedSince !== undefined) {
      if (this.probing || this.clock.now() < this.nextProbeAt) return this.takeLocal(key, cost);
      probe = this.probing = true;
    }
    try {
      const result = parseReply(await this.runScript(key, cost));
      this.redisAnswers++;
      if (this.degradedSince !== undefined) this.recover(this.degradedSince);
      return { ...result, source: 'redis' };
    } catch (error: unknown) {
      this.failures++;
      this.lastError = error;
      const now = this.clock.now();
      this.degradedSince ??= now;
      this.nextProbeAt = now + this.probeIntervalMs;
      if (this.fallbackEmitter.hasListeners) this.fallbackEmitter.emit({ error, key });
      return await this.takeLocal(key, cost);
    } finally {
      if (probe) this.probing = false;
    }
  }

  private recover(degradedSince: number): void {
    this.degradedSince = undefined;
    if (this.recoverEmitter.hasListeners) {
      this.recoverEmitter.emit({ degradedForMs: this.clock.now() - degradedSince });
    }
  }

  private async takeLocal(key: string, cost: number): Promise<TakeResult> {
    this.localAnswers++;
    // A smaller fallback bucket cannot hold more than its capacity: ask for all of it.
    const result = await this.fallback.take(key, Math.min(cost, this.fallback.limits.capacity));
    return { ...result, source: 'local' };
  }

  /** One script run, given up after `timeoutMs` (the timer is always cleared). */
  private async runScript(key: string, cost: number): Promise<unknown> {
    const options: RedisEvalOptions = {
      keys: [this.keyPrefix + key],
      arguments: [
        String(this.limits.ratePerSec),
        String(this.limits.capacity),
        String(cost),
        String(this.ttlMarginMs),
        this.scriptClock === undefined ? '' : String(this.scriptClock.now()),
      ],
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new TimeoutError(OWNER, this.timeoutMs, 'attempt'));
      }, this.timeoutMs);
    });
    try {
      // race() subscribes to both, so a late rejection of the script is handled.
      return await Promise.race([this.evalScript(options), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async evalScript(options: RedisEvalOptions): Promise<unknown> {
    try {
      return await this.client.evalSha(TOKEN_BUCKET_LUA_SHA1, options);
    } catch (error: unknown) {
      if (!isNoScriptError(error)) throw error;
      // EVAL also puts the script in the cache, so the next EVALSHA finds it.
      return await this.client.eval(TOKEN_BUCKET_LUA, options);
    }
  }
}
