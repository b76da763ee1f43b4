import { deriveSignal } from './abort.js';
import { EventEmitter, type Event } from './event.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import { TimeoutError } from './resilience.errors.js';

/** Largest delay `setTimeout` honours; longer ones fire after 1 ms in Node. */
const MAX_TIMER_MS = 2_147_483_647;

export interface TimeoutPolicyOptions {
  /** Names the policy in errors and events. */
  readonly name: string;
  /** Milliseconds the work may run: more than 0, at most 2^31 - 1 (the `setTimeout` limit). */
  readonly timeoutMs: number;
  /** `attempt`: bounds one try (inside a retry); `deadline`: bounds the whole operation (outside it). */
  readonly scope: 'attempt' | 'deadline';
}

/** Payload of {@link TimeoutPolicy.onTimeout}. */
export interface TimeoutEvent {
  readonly name: string;
  readonly timeoutMs: number;
  readonly scope: 'attempt' | 'deadline';
}

/** Resolves in place of the work's result when the derived signal aborts. */
const STOPPED: unique symbol = Symbol('stopped');

/**
 * Bounds how long the work may take, and cancels the work itself, not just
 * the wait: `fn` receives a signal derived from the caller's one.
 *
 * - Time up: the derived signal aborts with a {@link TimeoutError} (carrying
 *   `name`, `timeoutMs`, `scope`) and `execute` rejects at once with that same
 *   error, even if `fn` ignores its signal and never settles.
 * - Caller's signal aborts first: the derived signal aborts with the caller's
 *   `reason`, unchanged, and `execute` rejects with it, so a caller can tell
 *   its own cancellation from a timeout. An already-aborted caller signal
 *   rejects without calling `fn`.
 * - `fn` settles first: its result or error passes through unchanged. The
 *   derived signal is then left un-aborted on purpose (unlike cockatiel's
 *   default `abortOnReturn`): a returned value may still be reading from the
 *   work, e.g. a `fetch` Response whose body streams afterwards, and aborting
 *   would break it. Work that must not outlive `fn` should await its children.
 *
 * The timer and the listener on the caller's signal are removed on every path.
 *
 * @example
 * const attempt = new TimeoutPolicy({ name: 'users-db', timeoutMs: 2_000, scope: 'attempt' });
 * const rows = await attempt.execute(({ signal }) => query(sql, { signal }), request.signal);
 * @publicApi
 */
export class TimeoutPolicy implements Policy {
  readonly name: string;
  readonly timeoutMs: number;
  readonly scope: 'attempt' | 'deadline';

  private readonly timeoutEmitter = new EventEmitter<TimeoutEvent>();

  /** Fires when the time runs out (not when the caller cancels). */
  readonly onTimeout: Event<TimeoutEvent> = this.timeoutEmitter.event;

  constructor(options: TimeoutPolicyOptions) {
    // NaN fails both comparisons, so it is rejected too.
    if (!(options.timeoutMs > 0 && options.timeoutMs <= MAX_TIMER_MS)) {
      throw new RangeError(
        `timeoutMs of ${options.name} must be > 0 and <= ${MAX_TIMER_MS}, got ${String(options.timeoutMs)}`,
      );
    }
    this.name = options.name;
    this.timeoutMs = options.timeoutMs;
    this.scope = options.scope;
  }

  /**
   * Time is up, as this policy's own timer would say it: `abort` gets the
   * {@link TimeoutError}, then `onTimeout` fires. For the pipeline's shared
   * deadline and attempt timer, which runs both policies on one controller.
   * @internal
   */
  expire(abort: (error: TimeoutError) => void): void {
    abort(new TimeoutError(this.name, this.timeoutMs, this.scope));
    if (this.timeoutEmitter.hasListeners) {
      this.timeoutEmitter.emit({ name: this.name, timeoutMs: this.timeoutMs, scope: this.scope });
    }
  }

  async execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    signal.throwIfAborted();
    const derived = deriveSignal(signal);
    const child = derived.signal;

    // Settles as soon as the derived signal aborts (timeout or caller), so the
    // abort reason wins over any error fn rejects with in reaction to it.
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<typeof STOPPED>((resolve) => {
      onAbort = () => {
        resolve(STOPPED);
      };
      child.addEventListener('abort', onAbort, { once: true });
    });
    const timer = setTimeout(() => {
      const error = new TimeoutError(this.name, this.timeoutMs, this.scope);
      derived.controller.abort(error);
      if (this.timeoutEmitter.hasListeners) {
        this.timeoutEmitter.emit({ name: this.name, timeoutMs: this.timeoutMs, scope: this.scope });
      }
    }, this.timeoutMs);

    try {
      // The executor turns a synchronous throw of fn into a rejection.
      const work = new Promise<T>((resolve) => {
        resolve(fn({ signal: child }));
      });
      // Abandoned work may reject later: keep that from ever counting as unhandled,
      // without relying on Promise.race's own subscription.
      work.catch(() => undefined);
      const outcome = await Promise.race([work, stopped]);
      if (outcome === STOPPED) throw child.reason;
      return outcome;
    } finally {
      clearTimeout(timer);
      derived.dispose();
      if (onAbort !== undefined) child.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * A {@link TimeoutPolicy} bounding the whole operation, retries included;
 * place it outside the retry policy.
 *
 * @example
 * const pipeline = wrap(deadline('payments', 5_000), retry, new TimeoutPolicy({ name: 'payments', timeoutMs: 1_000, scope: 'attempt' }));
 * @publicApi
 */
export function deadline(name: string, timeoutMs: number): TimeoutPolicy {
  return new TimeoutPolicy({ name, timeoutMs, scope: 'deadline' });
}
