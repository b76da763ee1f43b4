import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';
import { GradientLimit, type GradientLimitChangeEvent, type GradientLimitOptions } from './gradient-limit.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import { ConcurrencyLimitError, isTimeoutError } from './resilience.errors.js';

/** Suggested wait while the no-load latency is still unknown. */
const FALLBACK_RETRY_AFTER_MS = 1_000;

export interface AdaptiveConcurrencyOptions extends GradientLimitOptions {
  /** Names the policy in errors, events and snapshots. */
  readonly name: string;
}

/** Payload of {@link AdaptiveConcurrencyPolicy.onReject}. */
export interface AdaptiveConcurrencyRejectEvent {
  readonly name: string;
  readonly limit: number;
}

/** Payload of {@link AdaptiveConcurrencyPolicy.onLimitChange}. */
export interface AdaptiveLimitChangeEvent extends GradientLimitChangeEvent {
  readonly name: string;
}

/** What {@link AdaptiveConcurrencyPolicy.snapshot} reports, e.g. for health or metrics. */
export interface AdaptiveConcurrencySnapshot {
  readonly name: string;
  readonly limit: number;
  readonly inFlight: number;
  readonly noLoadMs: number | undefined;
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly phase: 'probing' | 'tracking';
  readonly lastRttMs: number | undefined;
}

/**
 * Load shedding with a limit that follows the upstream's latency: at most
 * {@link GradientLimit.limit} calls run at once, and a call beyond it is
 * rejected at once (there is no queue) with
 * `ConcurrencyLimitError(name, limit, retryAfterMs)`.
 *
 * - Each admitted call that resolves, or fails with a `TimeoutError`, is a
 *   latency sample for the controller: a timeout says the upstream is slow.
 *   Other failures (fast errors, cancellations) say nothing about its
 *   latency and are not sampled; the slot is freed in every case.
 * - An already-aborted signal rejects with its `reason`, without a slot.
 * - `fn` gets the caller's signal as is: the policy never cancels work it
 *   admitted, even when the limit drops below the calls in flight.
 * - `retryAfterMs` is the no-load latency (about when a slot frees), or 1 s
 *   before the first probe measured it.
 *
 * @example
 * const adaptive = new AdaptiveConcurrencyPolicy({
 *   name: 'posts', initialLimit: 20, minLimit: 2, maxLimit: 200, smoothing: 0.2, tolerance: 1.5,
 *   windowMs: 1_000, probeIntervalMs: 60_000,
 * });
 * const posts = await adaptive.execute(({ signal }) => fetch(url, { signal }), request.signal);
 * @publicApi
 */
export class AdaptiveConcurrencyPolicy implements Policy {
  readonly name: string;
  readonly controller: GradientLimit;

  private readonly clock: Clock;
  private inFlight = 0;
  private readonly rejectEmitter = new EventEmitter<AdaptiveConcurrencyRejectEvent>();

  /** Fires when a call is shed because the limit is reached. */
  readonly onReject: Event<AdaptiveConcurrencyRejectEvent> = this.rejectEmitter.event;

  /**
   * The controller's {@link GradientLimit.onLimitChange} with the policy's
   * name; subscribes on the controller itself, so it costs nothing unsubscribed.
   */
  readonly onLimitChange: Event<AdaptiveLimitChangeEvent> = (listener) =>
    this.controller.onLimitChange((change) => {
      listener({ name: this.name, ...change });
    });

  constructor(options: AdaptiveConcurrencyOptions) {
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.controller = new GradientLimit({ ...options, clock: this.clock });
  }

  /** Current limit and load; cheap enough to call on every health check or scrape. */
  snapshot(): AdaptiveConcurrencySnapshot {
    const { limit, noLoadMs, phase, lastRttMs } = this.controller.snapshot();
    return {
      name: this.name,
      limit,
      inFlight: this.inFlight,
      noLoadMs,
      minLimit: this.controller.settings.minLimit,
      maxLimit: this.controller.settings.maxLimit,
      phase,
      lastRttMs,
    };
  }

  async execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    signal.throwIfAborted();
    const limit = this.controller.limit;
    if (this.inFlight >= limit) throw this.reject(limit);

    const inFlightAtStart = ++this.inFlight;
    const startedAt = this.clock.now();
    try {
      const result = await fn({ signal });
      this.controller.sample(startedAt, this.clock.now() - startedAt, inFlightAtStart);
      return result;
    } catch (error) {
      if (isTimeoutError(error)) this.controller.sample(startedAt, this.clock.now() - startedAt, inFlightAtStart);
      throw error;
    } finally {
      this.inFlight--;
    }
  }

  private reject(limit: number): ConcurrencyLimitError {
    if (this.rejectEmitter.hasListeners) this.rejectEmitter.emit({ name: this.name, limit });
    const noLoadMs = this.controller.noLoadMs;
    // At least 1 ms: a hint of 0 would invite an immediate retry into the same full limit.
    const retryAfterMs = noLoadMs === undefined ? FALLBACK_RETRY_AFTER_MS : Math.max(1, Math.round(noLoadMs));
    return new ConcurrencyLimitError(this.name, limit, retryAfterMs);
  }
}
