/**
 * Pure token-bucket arithmetic shared by the in-process store and the Redis
 * Lua script (which mirrors {@link take} operation for operation, so both give
 * bit-identical answers for the same timestamps).
 *
 * A bucket holds up to `capacity` tokens and refills continuously at
 * `ratePerSec`; a request of `cost` tokens is admitted when that many are
 * there. Times are in milliseconds on any monotonic-ish scale.
 *
 * @publicApi
 */

/** Rate and burst of a bucket. */
export interface BucketLimits {
  /** Tokens added per second: finite and > 0. */
  readonly ratePerSec: number;
  /** Most tokens the bucket holds (the burst): finite and > 0. */
  readonly capacity: number;
}

/** What a store remembers per key. A missing state is a full bucket. */
export interface BucketState {
  /** Tokens in the bucket at `updatedAtMs`: 0..capacity, fractional. */
  readonly tokens: number;
  /** Latest time the bucket was refilled to; never moves backwards. */
  readonly updatedAtMs: number;
}

/** Outcome of {@link take}. */
export interface TakeOutcome {
  readonly allowed: boolean;
  /** The state to store back (refilled to now, minus `cost` when allowed). */
  readonly state: BucketState;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** 0 when allowed; else the whole ms after which `cost` tokens are there. */
  readonly retryAfterMs: number;
  /** Whole ms until the bucket is full again (0 when it is full). */
  readonly resetMs: number;
}

/**
 * Tolerance, in tokens, for rounding drift of the refill sums: a bucket at
 * `cost - 1e-9` counts as holding `cost`. Each admission can thus exceed the
 * exact budget by at most this much. The Lua script uses the same constant.
 */
export const TOKEN_EPSILON = 1e-9;

/** Throws a `RangeError` unless `ratePerSec` and `capacity` are finite and > 0. */
export function assertBucketLimits(limits: BucketLimits, owner = 'token bucket'): void {
  const { ratePerSec, capacity } = limits;
  // NaN fails the comparisons, so it is rejected too.
  if (!(Number.isFinite(ratePerSec) && ratePerSec > 0)) {
    throw new RangeError(`ratePerSec of ${owner} must be finite and > 0, got ${String(ratePerSec)}`);
  }
  if (!(Number.isFinite(capacity) && capacity > 0)) {
    throw new RangeError(`capacity of ${owner} must be finite and > 0, got ${String(capacity)}`);
  }
}

/** Throws a `RangeError` unless `0 <= cost <= capacity` (a larger cost could never be admitted). */
export function assertCost(cost: number, limits: BucketLimits, owner = 'token bucket'): void {
  if (!(cost >= 0 && cost <= limits.capacity)) {
    throw new RangeError(`cost for ${owner} must be in 0..${String(limits.capacity)}, got ${String(cost)}`);
  }
}

/** Tokens after `elapsedMs` of refill from `tokens`, capped at capacity. */
const refill = (tokens: number, elapsedMs: number, { ratePerSec, capacity }: BucketLimits): number =>
  Math.min(capacity, tokens + (elapsedMs * ratePerSec) / 1000);

/**
 * The least whole `ms` such that `refill(tokens, ms)` holds `target` tokens,
 * evaluated with the very float operations {@link take} will use, so asking
 * exactly `ms` later succeeds and `ms - 1` later fails. `target <= capacity`.
 */
function msUntil(tokens: number, target: number, limits: BucketLimits): number {
  if (tokens + TOKEN_EPSILON >= target) return 0;
  let ms = Math.ceil(((target - tokens) * 1000) / limits.ratePerSec);
  // The estimate is off by at most one step either way through rounding.
  while (ms > 0 && refill(tokens, ms - 1, limits) + TOKEN_EPSILON >= target) ms--;
  while (refill(tokens, ms, limits) + TOKEN_EPSILON < target) ms++;
  return ms;
}

/**
 * Refills the bucket to `nowMs` and tries to take `cost` tokens.
 *
 * - A missing `state` is a new, full bucket.
 * - Refill is `elapsedMs * ratePerSec / 1000`, capped at `capacity`.
 * - A `nowMs` before `state.updatedAtMs` (a clock stepping back) adds
 *   nothing and keeps `updatedAtMs`; `retryAfterMs`/`resetMs` then include the
 *   wait until the clock is back at `updatedAtMs`.
 * - A denied request takes nothing.
 *
 * Validate inputs with {@link assertBucketLimits} / {@link assertCost} first:
 * this function assumes them valid.
 */
export function take(state: BucketState | undefined, nowMs: number, limits: BucketLimits, cost = 1): TakeOutcome {
  const { capacity } = limits;
  let tokens: number;
  let updatedAtMs: number;
  if (state === undefined) {
    tokens = capacity;
    updatedAtMs = nowMs;
  } else {
    // Clamp a state from another configuration (say a lowered capacity) into range.
    tokens = Math.min(capacity, Math.max(0, state.tokens));
    updatedAtMs = state.updatedAtMs;
    if (nowMs > updatedAtMs) {
      tokens = refill(tokens, nowMs - updatedAtMs, limits);
      updatedAtMs = nowMs;
    }
  }

  const allowed = tokens + TOKEN_EPSILON >= cost;
  if (allowed) tokens = Math.max(0, tokens - cost);
  // Time until the clock is back at updatedAtMs (0 unless it stepped back).
  const lagMs = Math.ceil(updatedAtMs - nowMs);
  return {
    allowed,
    state: { tokens, updatedAtMs },
    remaining: Math.floor(tokens + TOKEN_EPSILON),
    retryAfterMs: allowed ? 0 : lagMs + msUntil(tokens, cost, limits),
    resetMs: lagMs + msUntil(tokens, capacity, limits),
  };
}
