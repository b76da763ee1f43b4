import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';

/** Samples a window (or the probe) needs when `minSamples` is not given. */
const DEFAULT_MIN_SAMPLES = 10;
/** The gradient never cuts the limit by more than half in one window (a noisy window must not collapse it). */
const MIN_GRADIENT = 0.5;

export interface GradientLimitOptions {
  /** Limit after the first probe: an integer in `minLimit..maxLimit`. */
  readonly initialLimit: number;
  /** Lowest limit, also the limit while probing: an integer >= 1. */
  readonly minLimit: number;
  /** Highest limit: an integer >= `minLimit`. */
  readonly maxLimit: number;
  /** Weight of a window's new limit in the estimate: 0 < smoothing <= 1 (1: no smoothing). */
  readonly smoothing: number;
  /** Latency may reach `tolerance` × no-load latency before the limit shrinks: >= 1. */
  readonly tolerance: number;
  /** Sampling window in ms: > 0. */
  readonly windowMs: number;
  /** Samples a window (or the probe) needs before it counts: an integer >= 1, default 10. */
  readonly minSamples?: number;
  /** How often, in ms, the no-load latency is measured again: > 0. */
  readonly probeIntervalMs: number;
  /** Time source of windows and probes; defaults to `performance.now()`. */
  readonly clock?: Clock;
}

/** The options as validated, `minSamples` filled in. */
export type GradientLimitSettings = Readonly<Required<Omit<GradientLimitOptions, 'clock'>>>;

/** What {@link GradientLimit.snapshot} reports. */
export interface GradientLimitSnapshot {
  readonly limit: number;
  readonly noLoadMs: number | undefined;
  readonly phase: 'probing' | 'tracking';
  readonly lastRttMs: number | undefined;
}

/** Payload of {@link GradientLimit.onLimitChange}. */
export interface GradientLimitChangeEvent {
  readonly from: number;
  readonly to: number;
  readonly noLoadMs: number | undefined;
  /** Average latency of the window that moved the limit; undefined when a probe began or ended. */
  readonly rttMs: number | undefined;
}

/** Median of a non-empty list. */
const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
};

/**
 * An adaptive concurrency limit, a gradient controller after Netflix
 * concurrency-limits' Gradient2 and Envoy's adaptive concurrency filter. It
 * only does arithmetic on the samples it is given (no timers); a policy
 * admits calls while fewer than {@link limit} run.
 *
 * - **Probing**: the limit is pinned at `minLimit` so the upstream sees almost
 *   no load, and the median latency of calls started since the probe began
 *   becomes the no-load latency. The probe ends with `minSamples` samples, or
 *   after `windowMs` with at least one. The limit then returns to what it was
 *   before the probe (`initialLimit` the first time). A probe is due again
 *   `probeIntervalMs` after one ended, so a drifting baseline is noticed.
 * - **Tracking**: a window closes with the first sample once it has lasted
 *   `windowMs` and holds `minSamples` samples. With `rtt` its average,
 *   `gradient = clamp(tolerance × noLoad / rtt, 0.5, 1)` and
 *   `newLimit = estimate × gradient + sqrt(estimate)`: latency within tolerance
 *   grows the limit by its square root, latency above it shrinks it. A window
 *   in which the callers never used half the limit (app-limited) leaves it
 *   as is, so an idle period cannot inflate it. The estimate moves towards
 *   `newLimit` by `smoothing` and stays a float within the bounds; `limit` is
 *   its integer part.
 *
 * @example
 * const gradient = new GradientLimit({
 *   initialLimit: 20, minLimit: 2, maxLimit: 200, smoothing: 0.2, tolerance: 1.5,
 *   windowMs: 1_000, probeIntervalMs: 60_000,
 * });
 * const startedAt = performance.now();
 * await call();
 * gradient.sample(startedAt, performance.now() - startedAt, inFlightAtStart);
 * @publicApi
 */
export class GradientLimit {
  readonly settings: GradientLimitSettings;

  private readonly clock: Clock;
  private phase: 'probing' | 'tracking' = 'probing';
  /** The limit as a float, so small steps accumulate; also what a probe returns to. */
  private estimate: number;
  private noLoad: number | undefined;
  private lastRtt: number | undefined;
  /** The integer limit last reported, to fire onLimitChange on changes only. */
  private reportedLimit: number;

  private probeStartedAt: number;
  private probeSamples: number[] = [];
  private probeFirstSampleAt = 0;
  private nextProbeAt = 0;

  private windowStartedAt = 0;
  private windowRttSum = 0;
  private windowCount = 0;
  private windowMaxInFlight = 0;

  private readonly limitChangeEmitter = new EventEmitter<GradientLimitChangeEvent>();

  /** Fires when the integer limit changes, including when a probe pins it to `minLimit` or releases it. */
  readonly onLimitChange: Event<GradientLimitChangeEvent> = this.limitChangeEmitter.event;

  constructor(options: GradientLimitOptions) {
    const { initialLimit, minLimit, maxLimit, smoothing, tolerance, windowMs, probeIntervalMs } = options;
    const minSamples = options.minSamples ?? DEFAULT_MIN_SAMPLES;
    if (!Number.isInteger(minLimit) || minLimit < 1) {
      throw new RangeError(`minLimit must be an integer >= 1, got ${String(minLimit)}`);
    }
    if (!Number.isInteger(maxLimit) || maxLimit < minLimit) {
      throw new RangeError(`maxLimit must be an integer >= minLimit (${String(minLimit)}), got ${String(maxLimit)}`);
    }
    if (!Number.isInteger(initialLimit) || initialLimit < minLimit || initialLimit > maxLimit) {
      throw new RangeError(
        `initialLimit must be an integer in ${String(minLimit)}..${String(maxLimit)}, got ${String(initialLimit)}`,
      );
    }
    // Comparisons in the accepting form, so NaN is rejected too.
    if (!(smoothing > 0 && smoothing <= 1)) {
      throw new RangeError(`smoothing must be in (0, 1], got ${String(smoothing)}`);
    }
    if (!(tolerance >= 1 && Number.isFinite(tolerance))) {
      throw new RangeError(`tolerance must be a finite number >= 1, got ${String(tolerance)}`);
    }
    if (!(windowMs > 0 && Number.isFinite(windowMs))) {
      throw new RangeError(`windowMs must be a finite number > 0, got ${String(windowMs)}`);
    }
    if (!Number.isInteger(minSamples) || minSamples < 1) {
      throw new RangeError(`minSamples must be an integer >= 1, got ${String(minSamples)}`);
    }
    if (!(probeIntervalMs > 0 && Number.isFinite(probeIntervalMs))) {
      throw new RangeError(`probeIntervalMs must be a finite number > 0, got ${String(probeIntervalMs)}`);
    }
    this.settings = { initialLimit, minLimit, maxLimit, smoothing, tolerance, windowMs, minSamples, probeIntervalMs };
    this.clock = options.clock ?? systemClock;
    this.estimate = initialLimit;
    this.probeStartedAt = this.clock.now();
    this.reportedLimit = this.limit;
  }

  /** Calls allowed to run at once: an integer in `minLimit..maxLimit`, `minLimit` while probing. */
  get limit(): number {
    const { minLimit } = this.settings;
    return this.phase === 'probing' ? minLimit : Math.max(minLimit, Math.floor(this.estimate));
  }

  /** Median latency of the last probe; undefined until the first probe ended. */
  get noLoadMs(): number | undefined {
    return this.noLoad;
  }

  snapshot(): GradientLimitSnapshot {
    return { limit: this.limit, noLoadMs: this.noLoad, phase: this.phase, lastRttMs: this.lastRtt };
  }

  /**
   * Records a finished call: when it started (clock time), how long it took,
   * and the calls in flight when it started, itself included. Samples that
   * are not a duration (negative, NaN, infinite) are ignored.
   */
  sample(startedAt: number, rttMs: number, inFlight: number): void {
    if (!(rttMs >= 0 && Number.isFinite(rttMs))) return;
    const now = this.clock.now();
    if (this.phase === 'tracking') {
      if (now < this.nextProbeAt) {
        this.track(now, rttMs, inFlight);
        return;
      }
      this.startProbe(now);
    }
    this.probe(now, startedAt, rttMs);
  }

  private track(now: number, rttMs: number, inFlight: number): void {
    const { windowMs, minSamples, tolerance, smoothing, minLimit, maxLimit } = this.settings;
    this.windowRttSum += rttMs;
    this.windowCount++;
    this.windowMaxInFlight = Math.max(this.windowMaxInFlight, inFlight);
    if (now - this.windowStartedAt < windowMs || this.windowCount < minSamples) return;

    const rtt = this.windowRttSum / this.windowCount;
    // Always set in tracking (by the probe before it); rtt itself would read as within tolerance.
    const noLoad = this.noLoad ?? rtt;
    // rtt 0 cannot be above the no-load latency (and 0/0 would be NaN).
    const gradient = rtt === 0 ? 1 : Math.min(1, Math.max(MIN_GRADIENT, (tolerance * noLoad) / rtt));
    const appLimited = gradient === 1 && this.windowMaxInFlight < this.estimate / 2;
    const newLimit = appLimited ? this.estimate : this.estimate * gradient + Math.sqrt(this.estimate);
    const smoothed = this.estimate * (1 - smoothing) + newLimit * smoothing;
    this.estimate = Math.min(maxLimit, Math.max(minLimit, smoothed));
    this.lastRtt = rtt;
    this.startWindow(now);
    this.report(rtt);
  }

  private startProbe(now: number): void {
    // The estimate stays as it is: the probe returns to it.
    this.phase = 'probing';
    this.probeStartedAt = now;
    this.probeSamples = [];
    this.report(undefined);
  }

  private probe(now: number, startedAt: number, rttMs: number): void {
    const { windowMs, minSamples } = this.settings;
    // A call that started before the probe ran under the old limit's load.
    if (startedAt >= this.probeStartedAt) {
      if (this.probeSamples.length === 0) this.probeFirstSampleAt = now;
      this.probeSamples.push(rttMs);
    }
    const count = this.probeSamples.length;
    // The window counts from the first sample, not from the probe's start: a probe begun at boot
    // and idle since must not end on one (cold) sample.
    if (count < minSamples && !(count >= 1 && now - this.probeFirstSampleAt >= windowMs)) return;

    this.noLoad = median(this.probeSamples);
    this.probeSamples = [];
    this.phase = 'tracking';
    this.nextProbeAt = now + this.settings.probeIntervalMs;
    this.startWindow(now);
    this.report(undefined);
  }

  private startWindow(now: number): void {
    this.windowStartedAt = now;
    this.windowRttSum = 0;
    this.windowCount = 0;
    this.windowMaxInFlight = 0;
  }

  private report(rttMs: number | undefined): void {
    const to = this.limit;
    const from = this.reportedLimit;
    if (to === from) return;
    this.reportedLimit = to;
    if (this.limitChangeEmitter.hasListeners) {
      this.limitChangeEmitter.emit({ from, to, noLoadMs: this.noLoad, rttMs });
    }
  }
}
