import { systemClock, type Clock } from './clock.js';

export interface RetryBudgetOptions {
  /** Retries allowed as a share of first attempts in the window, e.g. 0.2 = at most 20 % extra load. */
  readonly ratio: number;
  /**
   * Retries per second always allowed, so a dependency with little traffic can
   * still retry a little (0.2 × 3 calls would otherwise allow none). Default 0.
   */
  readonly minRetriesPerSecond?: number;
  /** Length of the sliding window; default 10 000 ms. */
  readonly windowMs?: number;
  /**
   * Buckets the window is counted in (default 10): memory stays fixed and the
   * window slides in steps of `windowMs / buckets`.
   */
  readonly buckets?: number;
  readonly clock?: Clock;
}

export interface RetryBudgetSnapshot {
  /** First attempts in the window. */
  readonly calls: number;
  /** Retries granted in the window. */
  readonly retries: number;
  /** Observed retries / calls in the window (0 without calls). */
  readonly ratio: number;
  /** Retries the budget allows in the window right now. */
  readonly maxRetries: number;
  /** True when the next {@link RetryBudget.tryAcquireRetry} would be refused. */
  readonly exhausted: boolean;
}

/**
 * Caps retries to a share of recent traffic to one dependency, after Envoy's
 * and Finagle's retry budgets. Per-call attempt limits do not stop a retry
 * storm: when a dependency fails for everyone, 3 attempts per call triple its
 * load exactly when it can least take it. A budget keeps the extra load at
 * `ratio` (plus a small floor) however many callers fail. Share one instance
 * per dependency across all the policies calling it.
 *
 * A retry is allowed iff `retries < max(ratio × calls, minRetriesPerSecond × windowSeconds)`,
 * both counted over the sliding window.
 *
 * @example
 * const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 3 });
 * budget.recordCall();             // on every first attempt
 * if (budget.tryAcquireRetry()) scheduleRetry(); // after a transient failure
 * @publicApi
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly floor: number;
  private readonly bucketMs: number;
  private readonly clock: Clock;
  /** Ring of buckets; `ids[i]` is the absolute bucket number slot `i` currently counts. */
  private readonly ids: number[];
  private readonly calls: number[];
  private readonly retries: number[];

  constructor(options: RetryBudgetOptions) {
    const { ratio, minRetriesPerSecond = 0, windowMs = 10_000, buckets = 10, clock = systemClock } = options;
    if (!Number.isFinite(ratio) || ratio < 0) throw new RangeError(`ratio must be >= 0 (got ${String(ratio)})`);
    if (!Number.isFinite(minRetriesPerSecond) || minRetriesPerSecond < 0) {
      throw new RangeError(`minRetriesPerSecond must be >= 0 (got ${String(minRetriesPerSecond)})`);
    }
    if (!Number.isFinite(windowMs) || windowMs <= 0) {
      throw new RangeError(`windowMs must be > 0 (got ${String(windowMs)})`);
    }
    if (!Number.isInteger(buckets) || buckets < 1) {
      throw new RangeError(`buckets must be an integer >= 1 (got ${String(buckets)})`);
    }
    this.ratio = ratio;
    this.floor = minRetriesPerSecond * (windowMs / 1000);
    this.bucketMs = windowMs / buckets;
    this.clock = clock;
    this.ids = new Array<number>(buckets).fill(Number.NEGATIVE_INFINITY);
    this.calls = new Array<number>(buckets).fill(0);
    this.retries = new Array<number>(buckets).fill(0);
  }

  /** Counts a first attempt; retries are not calls. */
  recordCall(): void {
    const slot = this.current();
    this.calls[slot] = (this.calls[slot] ?? 0) + 1;
  }

  /** Grants (and counts) one retry if the budget allows it; false means do not retry. */
  tryAcquireRetry(): boolean {
    const { calls, retries } = this.totals();
    if (retries >= this.maxRetries(calls)) return false;
    const slot = this.current();
    this.retries[slot] = (this.retries[slot] ?? 0) + 1;
    return true;
  }

  snapshot(): RetryBudgetSnapshot {
    const { calls, retries } = this.totals();
    const maxRetries = this.maxRetries(calls);
    return { calls, retries, ratio: calls === 0 ? 0 : retries / calls, maxRetries, exhausted: retries >= maxRetries };
  }

  private maxRetries(calls: number): number {
    return Math.max(this.ratio * calls, this.floor);
  }

  private bucketNow(): number {
    return Math.floor(this.clock.now() / this.bucketMs);
  }

  /** Slot of the current bucket, reset first if it still holds an expired bucket. */
  private current(): number {
    const id = this.bucketNow();
    const size = this.ids.length;
    const slot = ((id % size) + size) % size;
    if (this.ids[slot] !== id) {
      this.ids[slot] = id;
      this.calls[slot] = 0;
      this.retries[slot] = 0;
    }
    return slot;
  }

  private totals(): { calls: number; retries: number } {
    const oldest = this.bucketNow() - this.ids.length + 1;
    let calls = 0;
    let retries = 0;
    this.ids.forEach((id, slot) => {
      if (id >= oldest) {
        calls += this.calls[slot] ?? 0;
        retries += this.retries[slot] ?? 0;
      }
    });
    return { calls, retries };
  }
}
