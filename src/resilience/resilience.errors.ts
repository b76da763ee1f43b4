/**
 * Typed, branded errors of the resilience policies. Check them with the
 * `is*` guards (brand fields, not `instanceof`), which also work across
 * realms and duplicated module copies.
 *
 * @publicApi
 */

/** The circuit is open (or half-open with every probe slot taken): no call was made. */
export class BrokenCircuitError extends Error {
  override readonly name = 'BrokenCircuitError';
  readonly isBrokenCircuitError = true;
  constructor(
    readonly policy: string,
    /** Milliseconds until the breaker lets a probe through. */
    readonly retryAfterMs: number,
  ) {
    super(`circuit for ${policy} is open`);
  }
}

/** The bulkhead is full and its queue too, or the wait in its queue timed out. */
export class BulkheadRejectedError extends Error {
  override readonly name = 'BulkheadRejectedError';
  readonly isBulkheadRejectedError = true;
  constructor(
    readonly policy: string,
    readonly reason: 'full' | 'queue_timeout',
    readonly retryAfterMs: number,
  ) {
    super(reason === 'full' ? `bulkhead for ${policy} is full` : `waited too long in the ${policy} bulkhead queue`);
  }
}

/** The adaptive concurrency limit is reached: the call was shed at once, without queueing. */
export class ConcurrencyLimitError extends Error {
  override readonly name = 'ConcurrencyLimitError';
  readonly isConcurrencyLimitError = true;
  constructor(
    readonly policy: string,
    /** The limit in force when the call was shed. */
    readonly limit: number,
    /** About one no-load call time, when a slot likely frees; 1 s while that is unknown. */
    readonly retryAfterMs: number,
  ) {
    super(`concurrency limit of ${policy} reached (${String(limit)} in flight)`);
  }
}

/** The token bucket is empty; `retryAfterMs` says when the next token arrives. */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  readonly isRateLimitedError = true;
  constructor(
    readonly policy: string,
    readonly retryAfterMs: number,
  ) {
    super(`rate limit for ${policy} exceeded`);
  }
}

/** One attempt, or the whole operation, ran past its time. The work was aborted with this as the reason. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly isTimeoutError = true;
  constructor(
    readonly policy: string,
    readonly timeoutMs: number,
    /** `attempt`: one try; `deadline`: the whole operation. */
    readonly scope: 'attempt' | 'deadline',
  ) {
    super(`${policy} ${scope === 'attempt' ? 'attempt' : 'deadline'} exceeded ${String(timeoutMs)} ms`);
  }
}

/** The caller's own signal aborted; `reason` is what the caller aborted with. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  readonly isCancelledError = true;
  constructor(
    readonly policy: string,
    readonly reason: unknown,
  ) {
    super(`${policy} call cancelled by the caller`);
  }
}

const brand = (error: unknown, field: string): boolean =>
  typeof error === 'object' && error !== null && (error as Record<string, unknown>)[field] === true;

export const isBrokenCircuitError = (e: unknown): e is BrokenCircuitError => brand(e, 'isBrokenCircuitError');
export const isBulkheadRejectedError = (e: unknown): e is BulkheadRejectedError => brand(e, 'isBulkheadRejectedError');
export const isConcurrencyLimitError = (e: unknown): e is ConcurrencyLimitError => brand(e, 'isConcurrencyLimitError');
export const isRateLimitedError = (e: unknown): e is RateLimitedError => brand(e, 'isRateLimitedError');
export const isTimeoutError = (e: unknown): e is TimeoutError => brand(e, 'isTimeoutError');
export const isCancelledError = (e: unknown): e is CancelledError => brand(e, 'isCancelledError');
