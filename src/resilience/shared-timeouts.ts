import { onAbort } from './abort.js';
import type { Disposable } from './event.js';
import { NEVER_ABORTED, type PolicyContext } from './policy.js';
import type { TimeoutPolicy } from './timeout.policy.js';

/** Resolves in place of the work's result when the call or the attempt is stopped. */
const STOPPED: unique symbol = Symbol('stopped');
type Stop = (value: typeof STOPPED) => void;

const noop = (): undefined => undefined;

/**
 * One call's deadline and its per-attempt timeouts on one `AbortController`
 * and one timer, with the semantics of `wrap(deadline, …, retry, attemptTimeout)`
 * (see {@link TimeoutPolicy}), for the pipeline's hot path: that composition
 * derives two controllers per call, links both, and arms two timers.
 *
 * - The controller is linked to the caller's signal (one `onAbort` fan-out
 *   entry; none for `NEVER_ABORTED`) and is what the outer layers (bulkhead,
 *   breaker, retry) and the attempts see. A caller's abort aborts it with the
 *   caller's `reason`, unchanged, and the call rejects with it at once.
 * - One timer, armed for whichever comes first, the deadline (from the call's
 *   start) or the running attempt's timeout (from that attempt's start), and
 *   carrying that scope: its {@link TimeoutError} aborts the controller, the
 *   policy it stands for emits `onTimeout`, and the attempt (an attempt
 *   timeout) or the whole call (the deadline) rejects at once with that same
 *   error, even if the work ignores its signal.
 * - An attempt that times out has aborted the controller its work holds, so
 *   the call goes on with a fresh one (the only case a second controller is
 *   made), and the retry reads the signal afresh (`RetryPolicy.executeOn`);
 *   an attempt that fails otherwise leaves the controller un-aborted and the
 *   next attempt runs on it too. A successful attempt's signal is never
 *   aborted afterwards (no abort-on-return). Unlike separate attempt
 *   controllers, the signal of an attempt that already failed may still
 *   abort later, when a later attempt on the same controller times out or
 *   the deadline passes: a failed attempt has nothing left worth keeping.
 * - A caller that says when its signal aborts at the latest (`abortsAt`, its
 *   own deadline) before either timeout could fire gets neither a controller
 *   nor a timer: the call and its attempts run on the caller's signal, since
 *   no timeout of this call could ever be seen; its abort still rejects at once.
 * - The timer and the link to the caller are removed when the call settles.
 */
export class SharedTimeouts {
  /** Undefined when the call runs on the caller's own signal (see `abortsAt`). */
  private controller: AbortController | undefined;
  /** The signal the call runs on: the controller's, or the caller's. */
  private signal: AbortSignal;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** What the armed timer stands for when it fires. */
  private timerScope: 'attempt' | 'deadline';
  private readonly deadlineAt: number;
  private readonly link: Disposable | undefined;
  private inAttempt = false;
  private stopAttempt: Stop | undefined;
  private stopCall: Stop | undefined;
  /** Why the whole call stopped (the deadline's error or the caller's reason), once it has. */
  private reason: unknown;
  private stoppedCall = false;

  /**
   * @param abortsAt epoch ms by which the caller guarantees `caller` aborts (its own deadline), if it does.
   */
  constructor(
    private readonly deadline: TimeoutPolicy,
    private readonly attempt: TimeoutPolicy,
    caller: AbortSignal,
    abortsAt?: number,
  ) {
    this.deadlineAt = performance.now() + deadline.timeoutMs;
    const firstTimeoutMs = Math.min(attempt.timeoutMs, deadline.timeoutMs);
    // Most calls start their first attempt at once: arm for it now, and restart it when it does start.
    this.timerScope = attempt.timeoutMs < deadline.timeoutMs ? 'attempt' : 'deadline';
    if (caller !== NEVER_ABORTED && abortsAt !== undefined && abortsAt - Date.now() <= firstTimeoutMs) {
      this.signal = caller;
    } else {
      this.controller = new AbortController();
      this.signal = this.controller.signal;
      this.timer = setTimeout(this.onTimer, firstTimeoutMs);
    }
    this.link =
      caller === NEVER_ABORTED
        ? undefined
        : onAbort(caller, () => {
            this.stop(caller.reason);
          });
  }

  /** The signal the call currently runs on (read afresh by the retry). */
  readonly current = (): AbortSignal => this.signal;

  /** Runs the outer layers on the call's signal; rejects at once when the deadline passes or the caller aborts. */
  async run<T>(layers: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const stopped = new Promise<typeof STOPPED>((resolve) => {
      this.stopCall = resolve;
    });
    try {
      const work = layers(this.signal);
      // Abandoned work may reject later: keep that from ever counting as unhandled.
      work.catch(noop);
      const outcome = await Promise.race([work, stopped]);
      if (outcome === STOPPED) throw this.reason;
      return outcome;
    } finally {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.link?.dispose();
    }
  }

  /** One attempt of `fn` on the current controller, bounded by the attempt timeout. */
  attemptOf<T>(fn: (context: PolicyContext) => Promise<T> | T): () => Promise<T> {
    return async () => {
      const signal = this.signal;
      signal.throwIfAborted();
      if (this.controller !== undefined) this.armForAttempt();
      this.inAttempt = true;
      const stopped = new Promise<typeof STOPPED>((resolve) => {
        this.stopAttempt = resolve;
      });
      let succeeded = false;
      try {
        // The executor turns a synchronous throw of fn into a rejection.
        const work = new Promise<T>((resolve) => {
          resolve(fn({ signal }));
        });
        work.catch(noop);
        const outcome = await Promise.race([work, stopped]);
        if (outcome === STOPPED) throw signal.reason;
        succeeded = true;
        return outcome;
      } finally {
        this.inAttempt = false;
        this.stopAttempt = undefined;
        // A failed attempt's timer gives way to the deadline for the retry's wait. After a
        // success the call is ending: nothing waits on the timer any more.
        if (!succeeded && this.timer !== undefined && this.timerScope === 'attempt' && !this.stoppedCall) {
          this.armDeadline();
        }
      }
    };
  }

  private armForAttempt(): void {
    const remaining = this.deadlineAt - performance.now();
    if (this.attempt.timeoutMs < remaining) {
      // Still the timer armed at the start for the first attempt: restart it from now.
      if (this.timerScope === 'attempt' && this.timer !== undefined) this.timer.refresh();
      else this.arm(this.attempt.timeoutMs, 'attempt');
    } else if (this.timerScope !== 'deadline') {
      this.armDeadline();
    }
  }

  private armDeadline(): void {
    this.arm(this.deadlineAt - performance.now(), 'deadline');
  }

  private arm(ms: number, scope: 'attempt' | 'deadline'): void {
    clearTimeout(this.timer);
    this.timerScope = scope;
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(ms)));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.timerScope === 'attempt') {
      // Armed for a first attempt that has not started (a bulkhead queue): only the deadline is left.
      if (!this.inAttempt) {
        this.armDeadline();
        return;
      }
      const aborted = this.controller;
      // The call goes on (a retry) with a fresh controller; the timer now stands for the deadline.
      this.controller = new AbortController();
      this.signal = this.controller.signal;
      this.armDeadline();
      this.attempt.expire((error) => {
        aborted?.abort(error);
      });
      this.stopAttempt?.(STOPPED);
      return;
    }
    this.deadline.expire((error) => {
      this.stop(error);
    });
  };

  private stop(reason: unknown): void {
    if (this.stoppedCall) return;
    this.stoppedCall = true;
    this.reason = reason;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.controller?.abort(reason);
    this.stopAttempt?.(STOPPED);
    this.stopCall?.(STOPPED);
  }
}
