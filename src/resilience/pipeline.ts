import { AdaptiveConcurrencyPolicy, type AdaptiveConcurrencySnapshot } from './adaptive-concurrency.policy.js';
import { exponentialBackoff } from './backoff.js';
import { BulkheadPolicy, type BulkheadSnapshot } from './bulkhead.policy.js';
import { CircuitBreakerPolicy, type CircuitBreakerSnapshot } from './circuit-breaker.policy.js';
import { HedgePolicy, type HedgeSnapshot } from './hedge.policy.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import {
  isBulkheadRejectedError,
  isCancelledError,
  isConcurrencyLimitError,
  isRateLimitedError,
} from './resilience.errors.js';
import { RetryBudget, type RetryBudgetSnapshot } from './retry-budget.js';
import { RetryPolicy } from './retry.policy.js';
import { SharedTimeouts } from './shared-timeouts.js';
import { TimeoutPolicy } from './timeout.policy.js';

/** Settings of one dependency's pipeline; every field has a config name (see README). */
export interface PipelineSettings {
  readonly breakerFailures: number;
  readonly breakerFailureRatio: number;
  readonly breakerMinCalls: number;
  readonly breakerWindowMs: number;
  readonly breakerSlowCallMs: number;
  readonly breakerCooldownMs: number;
  readonly breakerHalfOpenProbes: number;
  readonly retryMaxAttempts: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly retryBudgetRatio: number;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly bulkheadMaxConcurrent: number;
  readonly bulkheadMaxQueue: number;
  readonly bulkheadQueueTimeoutMs: number;
  /** Hedged attempts of idempotent calls; off when absent. */
  readonly hedge?: {
    /** Fixed wait before the hedge; absent: the recent p95 of answer times. */
    readonly delayMs?: number;
    /** Hedges as a percentage of recent calls, at most. */
    readonly budgetPercent: number;
  };
  /** A learnt concurrency limit in place of the bulkhead; the bulkhead when absent. */
  readonly adaptiveConcurrency?: {
    readonly minLimit: number;
    readonly maxLimit: number;
    readonly initialLimit: number;
    readonly smoothing: number;
    readonly tolerance: number;
    readonly windowMs: number;
    readonly probeIntervalMs: number;
  };
}

/** What a caller may tell the pipeline about one call. */
export interface CallOptions {
  /** Epoch ms by which the caller's signal is sure to abort (the caller's own deadline). */
  readonly abortsAt?: number;
}

export interface PipelineSnapshot {
  readonly name: string;
  readonly breaker: CircuitBreakerSnapshot;
  /** Which gate admits calls: the bulkhead (`static`) or the learnt limit (`adaptive`). */
  readonly concurrency: 'static' | 'adaptive';
  readonly bulkhead: BulkheadSnapshot;
  readonly adaptiveLimit?: AdaptiveConcurrencySnapshot;
  readonly retryBudget: RetryBudgetSnapshot;
  readonly hedge?: HedgeSnapshot;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly maxAttempts: number;
}

const statusOf = (error: unknown): number | undefined => {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { status?: unknown; statusCode?: unknown; response?: { status?: unknown } };
  const status = e.status ?? e.statusCode ?? e.response?.status;
  return typeof status === 'number' ? status : undefined;
};

/**
 * What the breaker counts as the dependency failing: not the caller's own
 * cancellation, not our own load-shedding, and not a client error the
 * dependency answered correctly (4xx other than 408 and 429).
 */
export function countsAgainstDependency(error: unknown): boolean {
  if (
    isCancelledError(error) ||
    isBulkheadRejectedError(error) ||
    isConcurrencyLimitError(error) ||
    isRateLimitedError(error)
  ) {
    return false;
  }
  const status = statusOf(error);
  return !(status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429);
}

/**
 * One dependency's composed policies, in the documented order:
 * overall deadline → bulkhead or adaptive limit → circuit breaker → retry (with budget)
 * → timeout per attempt → hedge (idempotent calls, when configured).
 *
 * The deadline and the attempt timeouts of one call share one AbortController
 * and one timer ({@link SharedTimeouts}); a second controller is made only
 * when an attempt times out and the call retries. Reasons, events and
 * clean-up are those of `wrap(deadline, bulkhead, breaker, retry, attemptTimeout)`.
 *
 * @example
 * const posts = registry.get('posts');
 * const body = await posts.execute(({ signal }) => http.get(url, { signal }), request.signal);
 * @publicApi
 */
export class ResiliencePipeline implements Policy {
  readonly breaker: CircuitBreakerPolicy;
  /** Always built (routes use it through `@Bulkhead`); the gate of calls unless `limiter` is set. */
  readonly bulkhead: BulkheadPolicy;
  readonly limiter: AdaptiveConcurrencyPolicy | undefined;
  readonly hedge: HedgePolicy | undefined;
  readonly retry: RetryPolicy;
  readonly budget: RetryBudget;
  readonly attemptTimeout: TimeoutPolicy;
  readonly deadline: TimeoutPolicy;
  private readonly retryOnce: RetryPolicy;
  private readonly gate: AdaptiveConcurrencyPolicy | BulkheadPolicy;

  constructor(
    readonly name: string,
    readonly settings: PipelineSettings,
  ) {
    this.deadline = new TimeoutPolicy({ name, timeoutMs: settings.deadlineMs, scope: 'deadline' });
    this.bulkhead = new BulkheadPolicy({
      name,
      maxConcurrent: settings.bulkheadMaxConcurrent,
      maxQueue: settings.bulkheadMaxQueue,
      queueTimeoutMs: settings.bulkheadQueueTimeoutMs,
    });
    this.breaker = new CircuitBreakerPolicy({
      name,
      consecutiveFailures: settings.breakerFailures,
      failureRatio: settings.breakerFailureRatio,
      minimumCalls: settings.breakerMinCalls,
      windowMs: settings.breakerWindowMs,
      ...(settings.breakerSlowCallMs > 0 ? { slowCallMs: settings.breakerSlowCallMs } : {}),
      cooldownMs: settings.breakerCooldownMs,
      halfOpenProbes: settings.breakerHalfOpenProbes,
      isFailure: countsAgainstDependency,
    });
    // A floor of one retry per second lets a quiet dependency still retry; the ratio caps busy ones.
    this.budget = new RetryBudget({ ratio: settings.retryBudgetRatio, minRetriesPerSecond: 1 });
    this.retry = new RetryPolicy({
      name,
      maxAttempts: settings.retryMaxAttempts,
      backoff: exponentialBackoff({
        baseDelayMs: settings.retryBaseDelayMs,
        maxDelayMs: settings.retryMaxDelayMs,
        jitter: 'full',
      }),
      budget: this.budget,
      // Calls in flight when the breaker opens stop retrying into it.
      canRetry: () => this.breaker.state === 'closed',
    });
    this.attemptTimeout = new TimeoutPolicy({ name, timeoutMs: settings.timeoutMs, scope: 'attempt' });
    this.retryOnce = this.retry.withIdempotency(false);
    const { hedge, adaptiveConcurrency } = settings;
    this.hedge =
      hedge === undefined
        ? undefined
        : new HedgePolicy({
            name,
            ...(hedge.delayMs === undefined ? {} : { delayMs: hedge.delayMs }),
            budgetRatio: hedge.budgetPercent / 100,
            // A hedge never goes to a breaker that is open or probing.
            canHedge: () => this.breaker.state === 'closed',
          });
    this.limiter =
      adaptiveConcurrency === undefined ? undefined : new AdaptiveConcurrencyPolicy({ name, ...adaptiveConcurrency });
    this.gate = this.limiter ?? this.bulkhead;
  }

  /**
   * Runs an idempotent call (it may be retried).
   * @param options.abortsAt epoch ms by which `signal` is sure to abort (the caller's own
   *   deadline): when that comes before this pipeline's attempt timeout and deadline could
   *   fire, the call runs on `signal` itself, with no controller or timer of its own.
   */
  execute<T>(
    fn: (context: PolicyContext) => Promise<T> | T,
    signal: AbortSignal = NEVER_ABORTED,
    options?: CallOptions,
  ): Promise<T> {
    const hedge = this.hedge;
    const attempt = hedge === undefined ? fn : ({ signal: s }: PolicyContext) => hedge.execute(fn, s);
    return this.run(attempt, signal, this.retry, options?.abortsAt);
  }

  /** Runs a call that must not be repeated (POST without an idempotency key): never retried nor hedged. */
  executeOnce<T>(
    fn: (context: PolicyContext) => Promise<T> | T,
    signal: AbortSignal = NEVER_ABORTED,
    options?: CallOptions,
  ): Promise<T> {
    return this.run(fn, signal, this.retryOnce, options?.abortsAt);
  }

  private async run<T>(
    fn: (context: PolicyContext) => Promise<T> | T,
    signal: AbortSignal,
    retry: RetryPolicy,
    abortsAt: number | undefined,
  ): Promise<T> {
    signal.throwIfAborted();
    const call = new SharedTimeouts(this.deadline, this.attemptTimeout, signal, abortsAt);
    const attempt = call.attemptOf(fn);
    return call.run((callSignal) =>
      this.gate.execute(
        ({ signal: admitted }) => this.breaker.execute(() => retry.executeOn(attempt, call.current), admitted),
        callSignal,
      ),
    );
  }

  snapshot(): PipelineSnapshot {
    return {
      name: this.name,
      breaker: this.breaker.snapshot(),
      concurrency: this.limiter === undefined ? 'static' : 'adaptive',
      bulkhead: this.bulkhead.snapshot(),
      ...(this.limiter === undefined ? {} : { adaptiveLimit: this.limiter.snapshot() }),
      retryBudget: this.budget.snapshot(),
      ...(this.hedge === undefined ? {} : { hedge: this.hedge.snapshot() }),
      timeoutMs: this.settings.timeoutMs,
      deadlineMs: this.settings.deadlineMs,
      maxAttempts: this.settings.retryMaxAttempts,
    };
  }
}
