import type { Backoff } from './backoff.js';
import { EventEmitter, type Event } from './event.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import type { RetryBudget } from './retry-budget.js';
import { classifyFailure, type FailureClassification } from './transient.js';

/** Why a failed call was not retried (again). */
export type RetryGiveUpReason =
  'not_transient' | 'not_idempotent' | 'max_attempts' | 'budget_exhausted' | 'retry_after_too_long' | 'not_allowed';

export interface RetryEvent {
  readonly name: string;
  /** Retry number about to be waited for: 1 = the first retry (the second attempt), as passed to the backoff. */
  readonly attempt: number;
  readonly delayMs: number;
  /** The failure being retried. */
  readonly error: unknown;
}

export interface RetryGiveUpEvent {
  readonly name: string;
  /** Attempts made, the first one included. */
  readonly attempts: number;
  /** The last failure, which the policy rethrows unchanged. */
  readonly error: unknown;
  readonly reason: RetryGiveUpReason;
}

export interface RetryPolicyOptions {
  /** Dependency name, carried in events. */
  readonly name: string;
  /** Attempts in total, the first one included (3 = up to 2 retries). */
  readonly maxAttempts: number;
  /** Delay before retry n (1-based); see `exponentialBackoff`. */
  readonly backoff: Backoff;
  /** Decides what is worth retrying; default {@link classifyFailure}. */
  readonly classify?: (error: unknown) => FailureClassification;
  /** Shared per dependency; every retry must be granted by it. */
  readonly budget?: RetryBudget;
  /**
   * Longest server-requested wait (Retry-After) that is honoured; default 30 000 ms.
   * A longer one means the dependency is out for a while: giving up at once
   * frees the caller instead of holding it past any reasonable deadline.
   */
  readonly maxRetryAfterMs?: number;
  /**
   * Asked before each retry (and again after its backoff): false gives up with
   * reason `not_allowed`. The pipeline stops retrying into a breaker that has
   * opened meanwhile, so calls in flight stop adding load to a dead dependency.
   */
  readonly canRetry?: () => boolean;
  /**
   * Whether the calls may safely run more than once; default true. When false
   * nothing is retried (see {@link RetryPolicy.withIdempotency}).
   */
  readonly idempotent?: boolean;
}

/** Node clamps larger timer delays to 1 ms, which would turn a long wait into none. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Retries transient failures (per `classify`) with backoff, within a retry
 * budget, cancellably.
 *
 * - Only transient failures are retried, and only when the policy is idempotent:
 *   a non-idempotent call (a payment, a POST that creates) could run twice if
 *   the first attempt reached the server before failing, so its pipeline is
 *   built with `withIdempotency(false)` and never retries.
 * - The wait before retry n is `backoff(n)`; when the failure carries a
 *   Retry-After (429/503), it is `max(backoff(n), retryAfterMs)`: the server's
 *   hint is the earliest it will accept us, and a longer backoff still spreads
 *   clients out. A Retry-After above `maxRetryAfterMs` gives up instead.
 * - Each retry must be granted by the `budget`; when it is not, the last error
 *   is rethrown at once, so a dependency that fails for everyone sees at most
 *   `ratio` extra load.
 * - Every attempt gets the caller's signal. An attempt never starts once it has
 *   aborted, an abort during the wait stops it at once, and in both cases (and
 *   when an attempt fails after the abort) the policy rejects with the caller's
 *   `signal.reason` itself, unwrapped, so outer policies still recognise it.
 * - On giving up, the last error is rethrown unchanged.
 *
 * Place it outside the per-attempt timeout and inside the deadline:
 * `wrap(deadline, retry, attemptTimeout)`, so each try has its own time limit
 * and the deadline's abort ends the retrying.
 *
 * @example
 * const retry = new RetryPolicy({
 *   name: 'billing',
 *   maxAttempts: 3,
 *   backoff: exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 2_000 }),
 *   budget: new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 3 }),
 * });
 * retry.onGiveUp(({ reason }) => giveUps.inc({ reason }));
 * const invoice = await retry.execute(({ signal }) => billing.get(id, { signal }), request.signal);
 * const charge = await retry.withIdempotency(false).execute(({ signal }) => billing.charge(order, { signal }));
 * @publicApi
 */
export class RetryPolicy implements Policy {
  readonly name: string;
  readonly idempotent: boolean;
  private readonly options: RetryPolicyOptions;
  private readonly maxAttempts: number;
  private readonly maxRetryAfterMs: number;
  private readonly classify: (error: unknown) => FailureClassification;
  // Not readonly: views made by withIdempotency share their parent's emitters.
  private retryEmitter = new EventEmitter<RetryEvent>();
  private giveUpEmitter = new EventEmitter<RetryGiveUpEvent>();

  constructor(options: RetryPolicyOptions) {
    const { maxAttempts, maxRetryAfterMs = 30_000 } = options;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new RangeError(`maxAttempts must be an integer >= 1 (got ${String(maxAttempts)})`);
    }
    if (!(maxRetryAfterMs >= 0 && maxRetryAfterMs <= MAX_TIMER_MS)) {
      throw new RangeError(
        `maxRetryAfterMs must be between 0 and ${String(MAX_TIMER_MS)} (got ${String(maxRetryAfterMs)})`,
      );
    }
    this.options = options;
    this.name = options.name;
    this.idempotent = options.idempotent ?? true;
    this.maxAttempts = maxAttempts;
    this.maxRetryAfterMs = maxRetryAfterMs;
    this.classify = options.classify ?? ((error) => classifyFailure(error));
  }

  /** Fires before each backoff wait. */
  get onRetry(): Event<RetryEvent> {
    return this.retryEmitter.event;
  }

  /** Fires when a failure is rethrown instead of retried (not when the caller aborted). */
  get onGiveUp(): Event<RetryGiveUpEvent> {
    return this.giveUpEmitter.event;
  }

  /**
   * The same policy (options, budget, event listeners) for calls of the given
   * idempotency; `withIdempotency(false)` never retries.
   */
  withIdempotency(idempotent: boolean): RetryPolicy {
    if (idempotent === this.idempotent) return this;
    const view = new RetryPolicy({ ...this.options, idempotent });
    view.retryEmitter = this.retryEmitter;
    view.giveUpEmitter = this.giveUpEmitter;
    return view;
  }

  execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    return this.executeOn(fn, () => signal);
  }

  /**
   * {@link execute} with the caller's signal read afresh at every point it is
   * consulted (before each attempt, after a failure, for the wait), for an
   * outer policy that may replace it between attempts: the pipeline's shared
   * deadline hands out a new controller once an attempt timeout has aborted
   * the one the attempt ran on.
   * @internal
   */
  async executeOn<T>(fn: (context: PolicyContext) => Promise<T> | T, current: () => AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const signal = current();
      signal.throwIfAborted();
      // The budget's ratio is retries per logical call, so only first attempts count as calls.
      if (attempt === 1) this.options.budget?.recordCall();
      try {
        return await fn({ signal });
      } catch (error) {
        // Failing after the caller stopped is expected; the caller's reason is the real one.
        current().throwIfAborted();
        const delayMs = this.nextDelay(error, attempt);
        if (delayMs === undefined) throw error;
        if (this.retryEmitter.hasListeners) {
          this.retryEmitter.emit({ name: this.name, attempt, delayMs, error });
        }
        if (delayMs > 0) await sleep(delayMs, current());
        if (this.options.canRetry?.() === false) {
          this.giveUp(attempt, error, 'not_allowed');
          throw error;
        }
      }
    }
  }

  /** Delay before the next attempt, or undefined (after emitting onGiveUp) when not retrying. */
  private nextDelay(error: unknown, attempts: number): number | undefined {
    const { transient, retryAfterMs } = this.classify(error);
    let reason: RetryGiveUpReason | undefined;
    let delayMs = 0;
    if (!transient) reason = 'not_transient';
    else if (!this.idempotent) reason = 'not_idempotent';
    else if (attempts >= this.maxAttempts) reason = 'max_attempts';
    else if (retryAfterMs !== undefined && retryAfterMs > this.maxRetryAfterMs) reason = 'retry_after_too_long';
    else if (this.options.canRetry?.() === false) reason = 'not_allowed';
    else {
      const backoffMs = this.options.backoff(attempts);
      if (!(backoffMs >= 0)) throw new RangeError(`backoff(${String(attempts)}) returned ${String(backoffMs)}`);
      delayMs = Math.min(MAX_TIMER_MS, Math.max(backoffMs, retryAfterMs ?? 0));
      // Asked last, so a retry that would not happen anyway does not spend the budget.
      if (this.options.budget?.tryAcquireRetry() === false) reason = 'budget_exhausted';
    }
    if (reason === undefined) return delayMs;
    this.giveUp(attempts, error, reason);
    return undefined;
  }

  private giveUp(attempts: number, error: unknown, reason: RetryGiveUpReason): void {
    if (this.giveUpEmitter.hasListeners) {
      this.giveUpEmitter.emit({ name: this.name, attempts, error, reason });
    }
  }
}

/** Waits `ms`, or less if the signal aborts (then throws its reason). The timer never outlives the wait. */
async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      // The shared never-aborting signal would only collect listeners (and leak warnings).
      if (signal !== NEVER_ABORTED) {
        onAbort = resolve;
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
  signal.throwIfAborted();
}
