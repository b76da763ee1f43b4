/**
 * Delay, in milliseconds, before retry number `attempt` (1 = the first retry,
 * i.e. the second call).
 *
 * @publicApi
 */
export type Backoff = (attempt: number) => number;

/** How much randomness spreads the retries of many clients apart. */
export type Jitter = 'full' | 'equal' | 'none';

export interface ExponentialBackoffOptions {
  /** Delay of the first retry before jitter. */
  readonly baseDelayMs: number;
  /** Growth per retry; default 2. */
  readonly factor?: number;
  /** Upper bound of the un-jittered delay. */
  readonly maxDelayMs: number;
  /**
   * `full` (default): uniform in [0, delay), AWS "full jitter", which spreads a
   * burst of clients the most and so drains a recovering dependency fastest.
   * `equal`: delay/2 + uniform in [0, delay/2), keeps a floor.
   * `none`: exactly the capped exponential delay (synchronised clients retry together).
   */
  readonly jitter?: Jitter;
  /** Source of randomness in [0, 1); injectable so tests are exact. */
  readonly random?: () => number;
}

/**
 * Capped exponential backoff with jitter:
 * `delay = min(maxDelayMs, baseDelayMs * factor^(attempt - 1))`, then jittered.
 * Returns whole milliseconds (floored), the resolution timers have anyway.
 *
 * @example
 * const backoff = exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 5_000 });
 * backoff(1); // somewhere in [0, 100)
 * backoff(4); // somewhere in [0, 800)
 * @publicApi
 */
export function exponentialBackoff(options: ExponentialBackoffOptions): Backoff {
  const { baseDelayMs, factor = 2, maxDelayMs, jitter = 'full', random = Math.random } = options;
  if (!Number.isFinite(baseDelayMs) || baseDelayMs < 0) {
    throw new RangeError(`baseDelayMs must be a finite number >= 0 (got ${String(baseDelayMs)})`);
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new RangeError(`factor must be a finite number >= 1 (got ${String(factor)})`);
  }
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < baseDelayMs) {
    throw new RangeError(`maxDelayMs must be a finite number >= baseDelayMs (got ${String(maxDelayMs)})`);
  }

  return (attempt) => {
    if (!Number.isInteger(attempt) || attempt < 1) {
      throw new RangeError(`attempt must be an integer >= 1 (got ${String(attempt)})`);
    }
    // factor^(attempt-1) overflows to Infinity for large attempts; min() caps it. A zero
    // base would turn that into 0 * Infinity = NaN, so it short-circuits.
    const capped = baseDelayMs === 0 ? 0 : Math.min(maxDelayMs, baseDelayMs * factor ** (attempt - 1));
    switch (jitter) {
      case 'none':
        return Math.floor(capped);
      case 'equal':
        return Math.floor(capped / 2 + random() * (capped / 2));
      case 'full':
        return Math.floor(random() * capped);
    }
  };
}
