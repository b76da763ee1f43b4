import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { NEVER_ABORTED, wrap } from './policy.js';
import { isTimeoutError, TimeoutError } from './resilience.errors.js';
import { deadline, TimeoutPolicy, type TimeoutEvent } from './timeout.policy.js';

interface Tracked<T> {
  settled: boolean;
  value?: T;
  error?: unknown;
}

/** Records how a promise settles without ever leaving a rejection unhandled. */
function track<T>(promise: Promise<T>): Tracked<T> {
  const state: Tracked<T> = { settled: false };
  promise.then(
    (value) => {
      Object.assign(state, { settled: true, value });
    },
    (error: unknown) => {
      Object.assign(state, { settled: true, error });
    },
  );
  return state;
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

describe('TimeoutPolicy', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('passes the result through and cleans up, leaving the work signal un-aborted', async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 100, scope: 'attempt' });
    const caller = new AbortController();
    let workSignal: AbortSignal | undefined;

    const result = await policy.execute(({ signal }) => {
      workSignal = signal;
      return 42;
    }, caller.signal);

    expect(result).toBe(42);
    expect(workSignal).toBeDefined();
    expect(workSignal).not.toBe(caller.signal); // derived, not the caller's own
    expect(workSignal!.aborted).toBe(false); // no abort-on-return, by design
    expect(jest.getTimerCount()).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('aborts the work signal with a TimeoutError and rejects exactly at timeoutMs', async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 100, scope: 'attempt' });
    let workSignal: AbortSignal | undefined;
    const outcome = track(
      policy.execute(({ signal }) => {
        workSignal = signal;
        return new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => {
            reject(new Error('driver cancelled'));
          });
        });
      }),
    );

    await jest.advanceTimersByTimeAsync(99);
    expect(workSignal!.aborted).toBe(false);
    expect(outcome.settled).toBe(false);

    await jest.advanceTimersByTimeAsync(1);
    expect(workSignal!.aborted).toBe(true);
    expect(outcome.settled).toBe(true);
    // The reason wins over the error fn rejects with when it sees the abort.
    expect(outcome.error).toBe(workSignal!.reason);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(outcome.error).toMatchObject({ policy: 'db', timeoutMs: 100, scope: 'attempt' });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejects an uncooperative fn at the timeout without waiting for it', async () => {
    const policy = new TimeoutPolicy({ name: 'legacy', timeoutMs: 50, scope: 'attempt' });
    let finishLate: ((value: string) => void) | undefined;
    const outcome = track(
      policy.execute(
        () =>
          new Promise<string>((resolve) => {
            finishLate = resolve; // ignores the signal entirely
          }),
      ),
    );

    await jest.advanceTimersByTimeAsync(49);
    expect(outcome.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(outcome.error)).toBe(true);

    finishLate!('too late');
    await jest.advanceTimersByTimeAsync(0);
    expect(outcome.value).toBeUndefined();
  });

  it("propagates the caller's abort with its own reason, distinguishable from a timeout", async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 100, scope: 'attempt' });
    const timeouts: TimeoutEvent[] = [];
    policy.onTimeout((event) => timeouts.push(event));
    const caller = new AbortController();
    let workSignal: AbortSignal | undefined;
    const outcome = track(
      policy.execute(({ signal }) => {
        workSignal = signal;
        return never<string>();
      }, caller.signal),
    );

    await jest.advanceTimersByTimeAsync(30);
    const reason = new Error('client went away');
    caller.abort(reason);
    await jest.advanceTimersByTimeAsync(0);

    expect(workSignal!.aborted).toBe(true);
    expect(workSignal!.reason).toBe(reason);
    expect(outcome.error).toBe(reason);
    expect(isTimeoutError(outcome.error)).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);

    await jest.advanceTimersByTimeAsync(1_000);
    expect(timeouts).toEqual([]);
  });

  it('rejects with the reason of an already-aborted caller signal without calling fn', async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 100, scope: 'attempt' });
    const caller = new AbortController();
    const reason = new Error('cancelled before start');
    caller.abort(reason);
    const fn = jest.fn(() => 'ran');

    await expect(policy.execute(fn, caller.signal)).rejects.toBe(reason);

    expect(fn).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('passes errors of fn through unchanged, thrown synchronously or rejected', async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 100, scope: 'attempt' });
    const thrown = new Error('sync');
    const rejected = new Error('async');

    await expect(
      policy.execute(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    await expect(policy.execute(() => Promise.reject(rejected))).rejects.toBe(rejected);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('leaves no timer and no listener on the caller signal after many executions', async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 20, scope: 'attempt' });
    const caller = new AbortController();
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 3;
      runs.push(
        policy
          .execute(({ signal }) => {
            if (kind === 0) return Promise.resolve(i);
            if (kind === 1) return Promise.reject(new Error(`failed ${String(i)}`));
            return new Promise((_, reject) => {
              signal.addEventListener('abort', () => {
                reject(signal.reason as Error);
              });
            });
          }, caller.signal)
          .catch((error: unknown) => error),
      );
    }
    expect(abortListeners(caller.signal)).toBe(1); // fanned out, no MaxListenersExceededWarning

    await jest.advanceTimersByTimeAsync(20);
    const outcomes = await Promise.all(runs);

    expect(outcomes.filter(isTimeoutError)).toHaveLength(100);
    expect(jest.getTimerCount()).toBe(0);
    expect(abortListeners(caller.signal)).toBe(0);
  });

  it('leaves no listener on NEVER_ABORTED when called without a signal', async () => {
    const policy = new TimeoutPolicy({ name: 'db', timeoutMs: 20, scope: 'attempt' });
    const before = abortListeners(NEVER_ABORTED);

    await Promise.all(Array.from({ length: 10 }, () => policy.execute(() => 'ok')));

    expect(abortListeners(NEVER_ABORTED)).toBe(before);
  });

  it("records the 'deadline' scope and emits onTimeout once per timeout", async () => {
    const policy = deadline('checkout', 250);
    const events: TimeoutEvent[] = [];
    const subscription = policy.onTimeout((event) => events.push(event));
    expect(policy.scope).toBe('deadline');

    const first = track(policy.execute(() => never()));
    await jest.advanceTimersByTimeAsync(250);
    expect(first.error).toMatchObject({ name: 'TimeoutError', policy: 'checkout', timeoutMs: 250, scope: 'deadline' });
    expect((first.error as Error).message).toBe('checkout deadline exceeded 250 ms');
    expect(events).toEqual([{ name: 'checkout', timeoutMs: 250, scope: 'deadline' }]);

    subscription.dispose();
    const second = track(policy.execute(() => never()));
    await jest.advanceTimersByTimeAsync(250);
    expect(isTimeoutError(second.error)).toBe(true);
    expect(events).toHaveLength(1);
  });

  describe('nested', () => {
    it('fires the inner attempt timeout first when it is shorter', async () => {
      const pipeline = wrap(deadline('api', 100), new TimeoutPolicy({ name: 'api', timeoutMs: 50, scope: 'attempt' }));
      let workSignal: AbortSignal | undefined;
      const outcome = track(
        pipeline.execute(({ signal }) => {
          workSignal = signal;
          return never();
        }),
      );

      await jest.advanceTimersByTimeAsync(49);
      expect(outcome.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);

      expect(outcome.error).toMatchObject({ timeoutMs: 50, scope: 'attempt' });
      expect(workSignal!.reason).toBe(outcome.error);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('surfaces the outer deadline when it is shorter than the attempt', async () => {
      const attempt = new TimeoutPolicy({ name: 'api', timeoutMs: 50, scope: 'attempt' });
      const attemptTimeouts: TimeoutEvent[] = [];
      attempt.onTimeout((event) => attemptTimeouts.push(event));
      const pipeline = wrap(deadline('api', 30), attempt);
      let workSignal: AbortSignal | undefined;
      const outcome = track(
        pipeline.execute(({ signal }) => {
          workSignal = signal;
          return never();
        }),
      );

      await jest.advanceTimersByTimeAsync(29);
      expect(outcome.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);

      expect(outcome.error).toMatchObject({ timeoutMs: 30, scope: 'deadline' });
      // The deadline error reaches the innermost work through the attempt's derived signal.
      expect(workSignal!.reason).toBe(outcome.error);
      expect(jest.getTimerCount()).toBe(0);
      await jest.advanceTimersByTimeAsync(100);
      expect(attemptTimeouts).toEqual([]);
    });
  });

  it.each([0, -1, Number.NaN, Infinity, 2 ** 31])('rejects timeoutMs %p', (timeoutMs) => {
    expect(() => new TimeoutPolicy({ name: 'db', timeoutMs, scope: 'attempt' })).toThrow(RangeError);
  });
});
