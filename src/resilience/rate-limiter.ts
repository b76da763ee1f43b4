import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import { RateLimitedError } from './resilience.errors.js';
import { assertBucketLimits, assertCost, take, type BucketLimits, type BucketState } from './token-bucket.js';

/** Answer of a {@link RateLimiterStore}. */
export interface TakeResult {
  readonly allowed: boolean;
  /** Whole tokens left in the bucket after this request. */
  readonly remaining: number;
  /** 0 when allowed; else whole ms until `cost` tokens are there (e.g. for `Retry-After`). */
  readonly retryAfterMs: number;
  /** Whole ms until the bucket is full again. */
  readonly resetMs: number;
  /** Which bucket answered: the in-process one, or the shared one in Redis. */
  readonly source: 'local' | 'redis';
}

/**
 * Keeps token buckets by key. Implementations never sleep: an empty bucket is
 * answered at once with `allowed: false` and `retryAfterMs`.
 *
 * @publicApi
 */
export interface RateLimiterStore {
  /** The rate and burst every bucket of this store uses. */
  readonly limits: BucketLimits;
  /**
   * Takes `cost` tokens (default 1, `0..capacity`; otherwise rejects with a
   * `RangeError`) from the bucket of `key`, if there are that many.
   */
  take(key: string, cost?: number): Promise<TakeResult>;
  /** Whole tokens in `key`'s bucket now, without taking any; only stores that know synchronously. */
  peek?(key: string): number;
}

export interface LocalTokenBucketStoreOptions extends BucketLimits {
  /** Time source; defaults to `performance.now()`. */
  readonly clock?: Clock;
  /**
   * Most buckets kept (an integer >= 1, default 100 000). Beyond it the least
   * recently used bucket is dropped, which gives that key a fresh, full
   * bucket: size it above the number of keys active within `capacity / ratePerSec` s.
   */
  readonly maxKeys?: number;
}

/** Full buckets inspected for removal per `take`: keeps the sweep O(1) amortised. */
const SWEEP_PER_TAKE = 4;
const DEFAULT_MAX_KEYS = 100_000;

/**
 * Token buckets in a `Map`, for one process.
 *
 * Memory stays bounded: a bucket that has refilled to full is equivalent to
 * no bucket, so each `take` drops up to a few least-recently-used buckets
 * that are full again (no change in behaviour), and past `maxKeys` the least
 * recently used bucket is dropped regardless (see {@link LocalTokenBucketStoreOptions.maxKeys}).
 *
 * @example
 * const store = new LocalTokenBucketStore({ ratePerSec: 10, capacity: 20 });
 * const { allowed, retryAfterMs } = store.takeSync(`ip:${ip}`);
 * @publicApi
 */
export class LocalTokenBucketStore implements RateLimiterStore {
  readonly limits: BucketLimits;
  readonly maxKeys: number;

  private readonly clock: Clock;
  /** Insertion order is recency order: every access re-inserts its key at the end. */
  private readonly buckets = new Map<string, BucketState>();

  constructor(options: LocalTokenBucketStoreOptions) {
    const { ratePerSec, capacity, maxKeys = DEFAULT_MAX_KEYS } = options;
    assertBucketLimits({ ratePerSec, capacity }, 'LocalTokenBucketStore');
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new RangeError(`maxKeys of LocalTokenBucketStore must be an integer >= 1, got ${String(maxKeys)}`);
    }
    this.limits = { ratePerSec, capacity };
    this.maxKeys = maxKeys;
    this.clock = options.clock ?? systemClock;
  }

  /** Buckets currently kept. */
  get size(): number {
    return this.buckets.size;
  }

  async take(key: string, cost = 1): Promise<TakeResult> {
    return this.takeSync(key, cost);
  }

  /** {@link take} without the promise, for callers on a hot synchronous path. */
  takeSync(key: string, cost = 1): TakeResult {
    assertCost(cost, this.limits, 'LocalTokenBucketStore');
    const now = this.clock.now();
    const previous = this.buckets.get(key);
    const outcome = take(previous, now, this.limits, cost);
    if (previous !== undefined) this.buckets.delete(key);
    // A full bucket is what a missing one means: keep only buckets still refilling.
    if (outcome.resetMs > 0) this.buckets.set(key, outcome.state);
    this.sweep(now);
    return {
      allowed: outcome.allowed,
      remaining: outcome.remaining,
      retryAfterMs: outcome.retryAfterMs,
      resetMs: outcome.resetMs,
      source: 'local',
    };
  }

  peek(key: string): number {
    return take(this.buckets.get(key), this.clock.now(), this.limits, 0).remaining;
  }

  /** Forgets `key`'s bucket (it starts full again). */
  delete(key: string): boolean {
    return this.buckets.delete(key);
  }

  clear(): void {
    this.buckets.clear();
  }

  private sweep(now: number): void {
    let inspected = 0;
    for (const [key, state] of this.buckets) {
      if (this.buckets.size > this.maxKeys) {
        this.buckets.delete(key);
        continue;
      }
      if (inspected++ >= SWEEP_PER_TAKE) return;
      // Least recently used first: stop at the first bucket that is still refilling.
      if (take(state, now, this.limits, 0).resetMs > 0) return;
      this.buckets.delete(key);
    }
  }
}

export interface RateLimiterPolicyOptions extends BucketLimits {
  /** Names the policy in errors, events and snapshots. */
  readonly name: string;
  /**
   * Where the buckets live. Its `limits` must equal `ratePerSec`/`capacity`.
   * Defaults to a {@link LocalTokenBucketStore} with those limits.
   */
  readonly store?: RateLimiterStore;
  /** Bucket used by `execute`; defaults to `name`. */
  readonly key?: string;
  /** Clock of the default store; ignored when `store` is given. */
  readonly clock?: Clock;
}

/** Payload of {@link RateLimiterPolicy.onReject}. */
export interface RateLimiterRejectEvent {
  readonly name: string;
  readonly key: string;
  readonly retryAfterMs: number;
  readonly source: 'local' | 'redis';
}

/** What {@link RateLimiterPolicy.snapshot} reports about the policy-level bucket. */
export interface RateLimiterSnapshot {
  readonly name: string;
  readonly key: string;
  readonly ratePerSec: number;
  readonly capacity: number;
  /**
   * Whole tokens left in the policy's bucket: current when the store can
   * `peek` (the local store), else as of the last `execute` (`capacity` before any).
   */
  readonly remaining: number;
  /** Store that answered the last `execute`, if any. */
  readonly source: 'local' | 'redis' | undefined;
  /** `execute` calls admitted / rejected since creation. */
  readonly admitted: number;
  readonly rejected: number;
}

/**
 * A rate limit as a policy: `execute` takes one token from the bucket `key`
 * (default `name`) and runs `fn`, or, when the bucket is empty, rejects at
 * once with `RateLimitedError(name, retryAfterMs)` without calling `fn`. It
 * never waits for a token. An already-aborted caller signal rejects with its
 * reason before any token is taken; `fn` gets the caller's signal as is.
 *
 * `tryTake(key, cost)` exposes the store for per-client limits (an HTTP guard
 * keyed by client), answering instead of throwing.
 *
 * @example
 * const limiter = new RateLimiterPolicy({ name: 'geocoder', ratePerSec: 5, capacity: 10 });
 * const place = await limiter.execute(({ signal }) => geocode(address, { signal }));
 * @publicApi
 */
export class RateLimiterPolicy implements Policy {
  readonly name: string;
  readonly key: string;
  readonly ratePerSec: number;
  readonly capacity: number;
  readonly store: RateLimiterStore;

  private admitted = 0;
  private rejected = 0;
  private last: TakeResult | undefined;
  private readonly rejectEmitter = new EventEmitter<RateLimiterRejectEvent>();

  /** Fires when a request is refused, by `execute` or `tryTake`. */
  readonly onReject: Event<RateLimiterRejectEvent> = this.rejectEmitter.event;

  constructor(options: RateLimiterPolicyOptions) {
    const { name, ratePerSec, capacity } = options;
    assertBucketLimits({ ratePerSec, capacity }, name);
    const store = options.store ?? new LocalTokenBucketStore({ ratePerSec, capacity, clock: options.clock });
    if (store.limits.ratePerSec !== ratePerSec || store.limits.capacity !== capacity) {
      throw new RangeError(
        `store of ${name} has ratePerSec ${String(store.limits.ratePerSec)} and capacity ${String(store.limits.capacity)}, ` +
          `the policy ${String(ratePerSec)} and ${String(capacity)}`,
      );
    }
    this.name = name;
    this.key = options.key ?? name;
    this.ratePerSec = ratePerSec;
    this.capacity = capacity;
    this.store = store;
  }

  async execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    signal.throwIfAborted();
    const result = await this.store.take(this.key);
    this.last = result;
    if (!result.allowed) {
      this.rejected++;
      this.emitReject(this.key, result);
      throw new RateLimitedError(this.name, result.retryAfterMs);
    }
    this.admitted++;
    // The caller may have given up while the store answered; the token stays spent.
    signal.throwIfAborted();
    return fn({ signal });
  }

  /** Takes `cost` tokens from `key`'s bucket if there are that many; never throws for an empty bucket. */
  async tryTake(key: string, cost = 1): Promise<TakeResult> {
    const result = await this.store.take(key, cost);
    if (!result.allowed) this.emitReject(key, result);
    return result;
  }

  snapshot(): RateLimiterSnapshot {
    return {
      name: this.name,
      key: this.key,
      ratePerSec: this.ratePerSec,
      capacity: this.capacity,
      remaining: this.store.peek?.(this.key) ?? this.last?.remaining ?? this.capacity,
      source: this.last?.source,
      admitted: this.admitted,
      rejected: this.rejected,
    };
  }

  private emitReject(key: string, result: TakeResult): void {
    if (!this.rejectEmitter.hasListeners) return;
    this.rejectEmitter.emit({ name: this.name, key, retryAfterMs: result.retryAfterMs, source: result.source });
  }
}
