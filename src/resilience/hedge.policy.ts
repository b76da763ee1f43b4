import { onAbort } from './abort.js';
import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';
import { LatencyWindow } from './latency-window.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import { CancelledError } from './resilience.errors.js';
import { RetryBudget } from './retry-budget.js';

export interface HedgePolicyOptions {
  /** Names the policy in events and snapshots. */
  readonly name: string;
  /**
   * Fixed wait before the hedge, in ms. Undefined: the `quantile` of the
   * recent answer times (no hedging until there are enough of them).
   */
  readonly delayMs?: number;
  /** Which quantile of recent answer times is the delay when `delayMs` is unset; default 0.95. */
  readonly quantile?: number;
  /** Hedges allowed as a share of calls over the budget's window, e.g. 0.1 = at most 10 % extra load. */
  readonly budgetRatio: number;
  /** Length of the budget's sliding window; default 10 000 ms. */
  readonly budgetWindowMs?: number;
  /** Asked when the delay passes: false sends no hedge (e.g. the dependency's breaker is not closed). */
  readonly canHedge?: () => boolean;
  /** Measures answer times; defaults to `performance.now()`. */
  readonly clock?: Clock;
}

/** Payload of {@link HedgePolicy.onHedge}. */
export interface HedgeEvent {
  readonly name: string;
  /** How long the first attempt had been running when the hedge was sent. */
  readonly delayMs: number;
}

/** Payload of {@link HedgePolicy.onHedgeSkipped}. */
export interface HedgeSkippedEvent {
  readonly name: string;
  readonly reason: 'budget_exhausted' | 'not_allowed';
}

/** What {@link HedgePolicy.snapshot} reports, for /resilience and metrics. */
export interface HedgeSnapshot {
  /** The delay the next call would wait before hedging; undefined while it is still being learnt. */
  readonly delayMs: number | undefined;
  /** Whether the delay follows recent answer times (no fixed `delayMs`). */
  readonly adaptive: boolean;
  readonly budget: {
    /** Calls counted in the budget's window. */
    readonly calls: number;
    /** Hedges sent in the window. */
    readonly hedges: number;
    /** Hedges / calls in the window (0 without calls). */
    readonly ratio: number;
    /** Hedges the budget allows in the window right now. */
    readonly maxHedges: number;
    readonly exhausted: boolean;
  };
}

const NO_LINK = { dispose: (): undefined => undefined };

type Outcome<T> = { readonly leg: Leg; readonly ok: true; readonly value: T } | FailedOutcome;
interface FailedOutcome {
  readonly leg: Leg;
  readonly ok: false;
  readonly error: unknown;
}

/** One of the (at most two) identical attempts of a call. */
interface Leg {
  readonly controller: AbortController;
  readonly link: { dispose(): void };
  /** Clock time the attempt started. */
  readonly startedAt: number;
}

/**
 * Hedged requests for idempotent reads, after "The Tail at Scale" and Envoy's
 * request hedging: when an attempt has not answered after the delay (fixed,
 * or the recent p95 of answer times), an identical second attempt starts; the
 * first success wins and the other is aborted with a {@link CancelledError}
 * (so its socket is released, not left to finish).
 *
 * - Hedges come out of a budget of their own (`budgetRatio` of recent calls),
 *   so a dependency slow for everyone is not sent twice the load; a call past
 *   the delay with the budget spent just waits.
 * - `canHedge` is asked when the delay passes; the pipeline uses it to send no
 *   hedge to a breaker that is not closed.
 * - A failure of the first attempt before the delay fails the call at once (a
 *   retry policy outside decides what next); after the hedge was sent, the call
 *   fails only when both have failed, with the first attempt's error.
 * - The answer time of each call's winning attempt, from that attempt's
 *   start, feeds the adaptive delay.
 * - Without a hedge the call costs one controller linked to the caller's
 *   signal and one timer, both gone when it settles.
 *
 * @example
 * const hedge = new HedgePolicy({ name: 'posts', budgetRatio: 0.1 });
 * const posts = await hedge.execute(({ signal }) => http.get(url, { signal }), request.signal);
 * @publicApi
 */
export class HedgePolicy implements Policy {
  readonly name: string;
  private readonly clock: Clock;
  private readonly fixedDelayMs: number | undefined;
  private readonly latencies: LatencyWindow | undefined;
  private readonly budget: RetryBudget;
  private readonly canHedge: () => boolean;
  private readonly hedges = new EventEmitter<HedgeEvent>();
  private readonly wins = new EventEmitter<{ readonly name: string }>();
  private readonly skips = new EventEmitter<HedgeSkippedEvent>();

  /** Fires when a hedge is sent. */
  readonly onHedge: Event<HedgeEvent> = this.hedges.event;
  /** Fires when the hedge answered first (and the first attempt was aborted). */
  readonly onHedgeWin: Event<{ readonly name: string }> = this.wins.event;
  /** Fires when the delay passed but no hedge was sent. */
  readonly onHedgeSkipped: Event<HedgeSkippedEvent> = this.skips.event;

  constructor(options: HedgePolicyOptions) {
    const { name, delayMs, quantile = 0.95, budgetRatio, budgetWindowMs = 10_000 } = options;
    if (delayMs !== undefined && !(delayMs >= 0 && delayMs <= 2 ** 31 - 1)) {
      throw new RangeError(`delayMs of ${name} must be within 0..2147483647, got ${String(delayMs)}`);
    }
    if (!(budgetRatio >= 0 && budgetRatio <= 1)) {
      throw new RangeError(`budgetRatio of ${name} must be within 0..1, got ${String(budgetRatio)}`);
    }
    this.name = name;
    this.clock = options.clock ?? systemClock;
    this.fixedDelayMs = delayMs;
    this.latencies = delayMs === undefined ? new LatencyWindow({ quantile }) : undefined;
    this.budget = new RetryBudget({ ratio: budgetRatio, windowMs: budgetWindowMs, clock: this.clock });
    this.canHedge = options.canHedge ?? (() => true);
  }

  /** The wait before a hedge right now: the fixed delay, or the learnt quantile (undefined while learning). */
  get delayMs(): number | undefined {
    return this.fixedDelayMs ?? this.latencies?.estimate();
  }

  snapshot(): HedgeSnapshot {
    const { calls, retries, ratio, maxRetries, exhausted } = this.budget.snapshot();
    return {
      delayMs: this.delayMs,
      adaptive: this.fixedDelayMs === undefined,
      budget: { calls, hedges: retries, ratio, maxHedges: maxRetries, exhausted },
    };
  }

  /**
   * Runs `fn`, and once more in parallel if it has not answered after the delay.
   * Each attempt gets its own signal, aborted when the caller's aborts or when
   * the other attempt won.
   */
  execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    signal.throwIfAborted();
    this.budget.recordCall();
    const delayMs = this.delayMs;
    const started = this.clock.now();
    if (delayMs === undefined) {
      // Still learning the delay: one attempt, timed.
      return Promise.resolve()
        .then(() => fn({ signal }))
        .then((value) => {
          this.latencies?.record(this.clock.now() - started);
          return value;
        });
    }
    return this.race(fn, signal, delayMs, started);
  }

  private race<T>(
    fn: (context: PolicyContext) => Promise<T> | T,
    signal: AbortSignal,
    delayMs: number,
    started: number,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const legs: Leg[] = [];
      let pending = 0;
      let settled = false;
      let firstFailure: FailedOutcome | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;

      const finish = (outcome: Outcome<T>): void => {
        settled = true;
        clearTimeout(timer);
        for (const leg of legs) {
          leg.link.dispose();
          if (leg !== outcome.leg)
            leg.controller.abort(new CancelledError(this.name, 'another attempt answered first'));
        }
        if (outcome.ok) {
          // The winner's own answer time: a loser aborted by a hedge that won says nothing about the
          // dependency's usual answer times, and counting the wait for the hedge in would push the
          // delay up by itself.
          this.latencies?.record(this.clock.now() - outcome.leg.startedAt);
          if (outcome.leg !== legs[0] && this.wins.hasListeners) this.wins.emit({ name: this.name });
          resolve(outcome.value);
        } else {
          // The attempt's own error, whatever it is: this policy adds no error of its own.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject((firstFailure ?? outcome).error);
        }
      };

      const onOutcome = (outcome: Outcome<T>): void => {
        if (settled) return;
        pending--;
        if (outcome.ok) {
          finish(outcome);
          return;
        }
        if (outcome.leg === legs[0]) firstFailure = outcome;
        // Failed before the delay (nothing to hedge for), or both failed; else the other may still answer.
        if (pending === 0) finish(outcome);
      };

      const start = (): void => {
        const controller = new AbortController();
        const link =
          signal === NEVER_ABORTED
            ? NO_LINK
            : onAbort(signal, () => {
                controller.abort(signal.reason);
              });
        const leg: Leg = { controller, link, startedAt: this.clock.now() };
        legs.push(leg);
        pending++;
        let work: Promise<T>;
        try {
          work = Promise.resolve(fn({ signal: controller.signal }));
        } catch (error) {
          // A synchronous throw of fn, passed on as it is.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          work = Promise.reject(error);
        }
        work.then(
          (value) => {
            onOutcome({ leg, ok: true, value });
          },
          (error: unknown) => {
            onOutcome({ leg, ok: false, error });
          },
        );
      };

      start();
      timer = setTimeout(
        () => {
          timer = undefined;
          if (settled || signal.aborted) return;
          if (!this.canHedge()) {
            this.skipped('not_allowed');
            return;
          }
          if (!this.budget.tryAcquireRetry()) {
            this.skipped('budget_exhausted');
            return;
          }
          if (this.hedges.hasListeners) this.hedges.emit({ name: this.name, delayMs: this.clock.now() - started });
          start();
        },
        Math.max(0, Math.round(delayMs)),
      );
    });
  }

  private skipped(reason: HedgeSkippedEvent['reason']): void {
    if (this.skips.hasListeners) this.skips.emit({ name: this.name, reason });
  }
}
