import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import { BrokenCircuitError } from './resilience.errors.js';

/** The three states of a {@link CircuitBreakerPolicy}. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * Options of {@link CircuitBreakerPolicy}. Two opening rules, either of which
 * opens the circuit; leave both off and the breaker never opens on its own.
 */
export interface CircuitBreakerOptions {
  /** Names the breaker in errors, events and snapshots. */
  readonly name: string;
  /** Simple rule: open after this many consecutive failures. `0`/`undefined` turns it off. */
  readonly consecutiveFailures?: number;
  /**
   * Robust rule: open when failures / calls over the sliding window is at least
   * this ratio (0 < ratio <= 1) and the window holds at least `minimumCalls`
   * calls. `0`/`undefined` turns it off.
   */
  readonly failureRatio?: number;
  /** Calls the window must hold before the ratio rule may open the circuit. Default 10. */
  readonly minimumCalls?: number;
  /**
   * Length of the time-based sliding window, default 10 000 ms. It is kept as
   * 10 buckets, so memory is constant and old calls age out a bucket
   * (`windowMs / 10`) at a time. Setting it without `failureRatio` keeps the
   * window for {@link CircuitBreakerPolicy.snapshot} only.
   */
  readonly windowMs?: number;
  /** Calls that take longer than this count as failures even when they succeed. Off when undefined. */
  readonly slowCallMs?: number;
  /** How long the circuit stays open before it lets probes through (half-open). */
  readonly cooldownMs: number;
  /** Most probe calls running at once while half-open. Default 1. */
  readonly halfOpenProbes?: number;
  /** Successful probes that close the circuit. Default `halfOpenProbes`. */
  readonly halfOpenSuccesses?: number;
  /**
   * Which errors count as failures; default: all. Errors it rejects (client
   * errors, caller cancellations) pass through and count as nothing.
   */
  readonly isFailure?: (error: unknown) => boolean;
  /** Time source; defaults to `performance.now()`. */
  readonly clock?: Clock;
}

/** Payload of {@link CircuitBreakerPolicy.onStateChange}. */
export interface CircuitStateChange {
  readonly name: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** Clock time at which the breaker made the transition. */
  readonly at: number;
  /** Made by {@link CircuitBreakerPolicy.applyRemote} (another instance's breaker), not by this one's calls. */
  readonly remote: boolean;
}

/** Payload of {@link CircuitBreakerPolicy.onReject}. */
export interface CircuitRejection {
  readonly name: string;
  readonly state: 'open' | 'half-open';
}

/** Payload of {@link CircuitBreakerPolicy.onSuccess} and {@link CircuitBreakerPolicy.onFailure}. */
export interface CircuitCallOutcome {
  readonly name: string;
  readonly durationMs: number;
  /** Took longer than `slowCallMs`; a slow success counted as a failure. */
  readonly slow: boolean;
}

/** Read-only view of a breaker for admin endpoints and metrics. */
export interface CircuitBreakerSnapshot {
  readonly name: string;
  readonly state: CircuitState;
  /** Failures / calls over the current window; 0 with no calls (or no window). */
  readonly failureRatio: number;
  /** Calls recorded in the current window; 0 without a window. */
  readonly calls: number;
  readonly consecutiveFailures: number;
  /** While open: milliseconds until probes are let through. */
  readonly openUntil?: number;
}

const DEFAULT_WINDOW_MS = 10_000;
const WINDOW_BUCKETS = 10;
const DEFAULT_MINIMUM_CALLS = 10;

/**
 * Each state is its own object, replaced on every transition; a call keeps the
 * object it was admitted under, so a result arriving after the state moved on
 * is recognised as stale by identity and does not count.
 */
type Closed = { readonly kind: 'closed' };
type Open = { readonly kind: 'open'; readonly until: number };
type HalfOpen = { readonly kind: 'half-open'; inFlight: number; successes: number };
type InternalState = Closed | Open | HalfOpen;

interface Bucket {
  epoch: number;
  calls: number;
  failures: number;
}

/** Time-based sliding window as a ring of fixed buckets: bounded memory, O(buckets) reads. */
class SlidingWindow {
  private readonly buckets: Bucket[];
  private readonly bucketMs: number;

  constructor(windowMs: number) {
    this.bucketMs = windowMs / WINDOW_BUCKETS;
    this.buckets = Array.from({ length: WINDOW_BUCKETS }, () => ({ epoch: -Infinity, calls: 0, failures: 0 }));
  }

  record(now: number, failed: boolean): void {
    const epoch = Math.floor(now / this.bucketMs);
    const bucket = this.buckets[epoch % WINDOW_BUCKETS];
    if (bucket === undefined) return; // unreachable: the index is always in range
    if (bucket.epoch !== epoch) {
      bucket.epoch = epoch;
      bucket.calls = 0;
      bucket.failures = 0;
    }
    bucket.calls++;
    if (failed) bucket.failures++;
  }

  totals(now: number): { calls: number; failures: number } {
    const oldest = Math.floor(now / this.bucketMs) - WINDOW_BUCKETS;
    let calls = 0;
    let failures = 0;
    for (const bucket of this.buckets) {
      if (bucket.epoch > oldest) {
        calls += bucket.calls;
        failures += bucket.failures;
      }
    }
    return { calls, failures };
  }

  reset(): void {
    for (const bucket of this.buckets) bucket.epoch = -Infinity;
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`CircuitBreakerPolicy: ${message}`);
}

const isCount = (n: number | undefined, min: number): boolean => n === undefined || (Number.isInteger(n) && n >= min);
const isDuration = (n: number | undefined): boolean => n === undefined || (Number.isFinite(n) && n >= 0);

/**
 * A circuit breaker in the manner of resilience4j and Polly's advanced
 * breaker. Closed, it runs calls and watches their outcomes; once a rule
 * trips it opens and fails fast with {@link BrokenCircuitError} without
 * calling `fn`; after `cooldownMs` it turns half-open and lets up to
 * `halfOpenProbes` calls through at a time: `halfOpenSuccesses` successful
 * probes close it, any failed probe opens it for a fresh cooldown.
 *
 * Time is read lazily from the clock (no timers). Outcome bookkeeping:
 * - a success (not slow) resets the consecutive-failure count;
 * - a failure, or a success slower than `slowCallMs`, counts towards both rules;
 * - an error `isFailure` rejects counts as neither: it is not recorded in the
 *   window and leaves the consecutive count as it was, so ignorable errors
 *   (4xx, caller cancellations) can neither trip nor heal the circuit;
 * - the ratio rule is checked when a failure is recorded, never on a success;
 * - results of calls admitted under an earlier state are dropped.
 *
 * @example
 * const breaker = new CircuitBreakerPolicy({
 *   name: 'billing',
 *   consecutiveFailures: 5,
 *   failureRatio: 0.5,
 *   minimumCalls: 20,
 *   windowMs: 10_000,
 *   cooldownMs: 30_000,
 *   isFailure: (e) => !isCancelledError(e),
 * });
 * breaker.onStateChange(({ from, to }) => logger.warn(`billing breaker ${from} -> ${to}`));
 * const invoice = await breaker.execute(({ signal }) => billing.fetch(id, { signal }), request.signal);
 * @publicApi
 */
export class CircuitBreakerPolicy implements Policy {
  readonly name: string;

  private readonly stateChanges = new EventEmitter<CircuitStateChange>();
  private readonly rejections = new EventEmitter<CircuitRejection>();
  private readonly successes = new EventEmitter<CircuitCallOutcome>();
  private readonly failures = new EventEmitter<CircuitCallOutcome>();

  /** Fires on every transition, in order. */
  readonly onStateChange: Event<CircuitStateChange> = this.stateChanges.event;
  /** Fires when a call is turned away (open, or half-open with every probe slot taken). */
  readonly onReject: Event<CircuitRejection> = this.rejections.event;
  /**
   * Fires when `fn` resolved (with `slow: true` when it counted as a failure for being slow).
   * This and `onFailure` fire after any state change the call caused, and only for calls
   * whose duration was taken (some listener or `slowCallMs` present when the call started).
   */
  readonly onSuccess: Event<CircuitCallOutcome> = this.successes.event;
  /** Fires when `fn` threw an error that counts (`isFailure`); ignored errors fire nothing. */
  readonly onFailure: Event<CircuitCallOutcome> = this.failures.event;

  private readonly clock: Clock;
  private readonly consecutiveLimit: number;
  private readonly failureRatio: number;
  private readonly minimumCalls: number;
  private readonly slowCallMs: number | undefined;
  private readonly cooldownMs: number;
  private readonly halfOpenProbes: number;
  private readonly halfOpenSuccesses: number;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly window: SlidingWindow | undefined;

  private current: InternalState = { kind: 'closed' };
  private consecutive = 0;

  constructor(options: CircuitBreakerOptions) {
    check(isCount(options.consecutiveFailures, 0), 'consecutiveFailures must be an integer >= 0');
    check(
      options.failureRatio === undefined || (options.failureRatio >= 0 && options.failureRatio <= 1),
      'failureRatio must be within 0..1',
    );
    check(isCount(options.minimumCalls, 1), 'minimumCalls must be an integer >= 1');
    check(
      options.windowMs === undefined || (Number.isFinite(options.windowMs) && options.windowMs > 0),
      'windowMs must be > 0',
    );
    check(isDuration(options.slowCallMs), 'slowCallMs must be >= 0');
    check(Number.isFinite(options.cooldownMs) && options.cooldownMs >= 0, 'cooldownMs must be >= 0');
    check(isCount(options.halfOpenProbes, 1), 'halfOpenProbes must be an integer >= 1');
    check(isCount(options.halfOpenSuccesses, 1), 'halfOpenSuccesses must be an integer >= 1');

    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.consecutiveLimit = options.consecutiveFailures ?? 0;
    this.failureRatio = options.failureRatio ?? 0;
    this.minimumCalls = options.minimumCalls ?? DEFAULT_MINIMUM_CALLS;
    this.slowCallMs = options.slowCallMs;
    this.cooldownMs = options.cooldownMs;
    this.halfOpenProbes = options.halfOpenProbes ?? 1;
    this.halfOpenSuccesses = options.halfOpenSuccesses ?? this.halfOpenProbes;
    this.isFailure = options.isFailure ?? (() => true);
    // Without the ratio rule the window only feeds snapshot(), so keep it only when asked for.
    this.window =
      this.failureRatio > 0 || options.windowMs !== undefined
        ? new SlidingWindow(options.windowMs ?? DEFAULT_WINDOW_MS)
        : undefined;
  }

  /** The current state; an open circuit whose cooldown has passed reports (and becomes) half-open. */
  get state(): CircuitState {
    return this.refresh().kind;
  }

  /**
   * Runs `fn` through the breaker. `fn` receives the caller's `signal`
   * unchanged: the breaker never aborts work itself.
   *
   * @throws the caller's `signal.reason` if it is already aborted (`fn` is not called, nothing is counted)
   * @throws {BrokenCircuitError} when open, or half-open with every probe slot taken (`fn` is not called)
   * @example
   * const user = await breaker.execute(({ signal }) => client.get(`/users/${id}`, { signal }), signal);
   */
  async execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    if (signal.aborted) throw signal.reason;
    const admittedUnder = this.admit();
    // Durations cost a clock read on each side; take them only if something uses them.
    const start =
      this.slowCallMs !== undefined || this.successes.hasListeners || this.failures.hasListeners
        ? this.clock.now()
        : undefined;
    let value: T;
    try {
      value = await fn({ signal });
    } catch (error) {
      this.settle(admittedUnder, this.counts(error) ? 'failed' : 'ignored', start);
      throw error;
    }
    this.settle(admittedUnder, 'succeeded', start);
    return value;
  }

  /**
   * A consistent view for admin endpoints and metrics.
   *
   * @example
   * const { state, failureRatio, openUntil } = breaker.snapshot();
   */
  snapshot(): CircuitBreakerSnapshot {
    const now = this.clock.now();
    const state = this.refresh(now);
    const { calls, failures } = this.window?.totals(now) ?? { calls: 0, failures: 0 };
    return {
      name: this.name,
      state: state.kind,
      failureRatio: calls === 0 ? 0 : failures / calls,
      calls,
      consecutiveFailures: this.consecutive,
      ...(state.kind === 'open' ? { openUntil: state.until - now } : {}),
    };
  }

  /** Closes the circuit and forgets all recorded outcomes; results of calls still in flight are dropped. */
  reset(): void {
    this.close();
  }

  /**
   * Follows a transition another instance's breaker for the same dependency
   * made (a breaker shared through a bus): `open` opens a closed circuit for
   * one cooldown, after which this breaker half-opens and its own probes
   * decide; `closed` closes an open or half-open one. A half-open circuit
   * ignores `open`, so one instance's failed probes cannot hold the others
   * open. The transitions it makes carry `remote: true`.
   *
   * @returns whether the state changed
   * @example
   * bus.on('breaker', ({ state }) => breaker.applyRemote(state));
   */
  applyRemote(state: 'open' | 'closed'): boolean {
    const now = this.clock.now();
    const current = this.refresh(now);
    if (state === 'open') {
      if (current.kind !== 'closed') return false;
      this.open(now, true);
      return true;
    }
    if (current.kind === 'closed') return false;
    this.close(now, true);
    return true;
  }

  /** Applies the lazy open -> half-open transition once the cooldown is over. */
  private refresh(now?: number): InternalState {
    const state = this.current;
    if (state.kind !== 'open') return state;
    const time = now ?? this.clock.now();
    return time < state.until ? state : this.halfOpen(time);
  }

  private halfOpen(now: number): HalfOpen {
    return this.transition({ kind: 'half-open', inFlight: 0, successes: 0 }, now);
  }

  /** Lets a call in, taking a probe slot when half-open, or throws BrokenCircuitError. */
  private admit(): Closed | HalfOpen {
    let state: InternalState = this.current;
    if (state.kind === 'open') {
      const now = this.clock.now();
      const left = state.until - now;
      if (left > 0) throw this.reject('open', left);
      state = this.halfOpen(now);
    }
    if (state.kind === 'half-open') {
      // No way to know when a running probe finishes, so no useful wait to suggest.
      if (state.inFlight >= this.halfOpenProbes) throw this.reject('half-open', 0);
      state.inFlight++;
    }
    return state;
  }

  private reject(state: 'open' | 'half-open', retryAfterMs: number): BrokenCircuitError {
    if (this.rejections.hasListeners) this.rejections.emit({ name: this.name, state });
    return new BrokenCircuitError(this.name, retryAfterMs);
  }

  private counts(error: unknown): boolean {
    try {
      return this.isFailure(error);
    } catch {
      // A throwing predicate must not leak a probe slot or hide the caller's error; count it, as the default would.
      return true;
    }
  }

  private settle(admittedUnder: Closed | HalfOpen, outcome: 'succeeded' | 'failed' | 'ignored', start?: number): void {
    const end = start === undefined ? undefined : this.clock.now();
    const durationMs = start === undefined || end === undefined ? 0 : end - start;
    const slow = this.slowCallMs !== undefined && durationMs > this.slowCallMs;

    if (admittedUnder === this.current) {
      if (admittedUnder.kind === 'closed') {
        if (outcome !== 'ignored') this.recordClosed(outcome === 'failed' || slow, end);
      } else {
        admittedUnder.inFlight--;
        if (outcome === 'failed' || (outcome === 'succeeded' && slow)) this.open(end);
        else if (outcome === 'succeeded' && ++admittedUnder.successes >= this.halfOpenSuccesses) this.close(end);
      }
    }

    // Events describe the call, so they fire for stale results too; only when the duration was taken.
    if (start === undefined) return;
    const emitter = outcome === 'succeeded' ? this.successes : outcome === 'failed' ? this.failures : undefined;
    if (emitter?.hasListeners) emitter.emit({ name: this.name, durationMs, slow });
  }

  private recordClosed(failed: boolean, end: number | undefined): void {
    this.consecutive = failed ? this.consecutive + 1 : 0;
    let now = end;
    if (this.window !== undefined) {
      now ??= this.clock.now();
      this.window.record(now, failed);
    }
    if (!failed) return;
    if (this.consecutiveLimit > 0 && this.consecutive >= this.consecutiveLimit) {
      this.open(now);
      return;
    }
    if (this.failureRatio > 0 && this.window !== undefined && now !== undefined) {
      const { calls, failures } = this.window.totals(now);
      if (calls >= this.minimumCalls && failures / calls >= this.failureRatio) this.open(now);
    }
  }

  private open(now = this.clock.now(), remote = false): void {
    this.transition({ kind: 'open', until: now + this.cooldownMs }, now, remote);
  }

  private close(now?: number, remote = false): void {
    this.window?.reset();
    this.consecutive = 0;
    this.transition({ kind: 'closed' }, now, remote);
  }

  private transition<S extends InternalState>(next: S, now?: number, remote = false): S {
    const from = this.current.kind;
    this.current = next;
    // State is settled before listeners run, so a throwing listener cannot leave it half-changed.
    if (from !== next.kind && this.stateChanges.hasListeners) {
      this.stateChanges.emit({ name: this.name, from, to: next.kind, at: now ?? this.clock.now(), remote });
    }
    return next;
  }
}
