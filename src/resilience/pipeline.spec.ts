import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { countsAgainstDependency, ResiliencePipeline, type PipelineSettings } from './pipeline.js';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CancelledError,
  ConcurrencyLimitError,
  isBrokenCircuitError,
  isTimeoutError,
  RateLimitedError,
  TimeoutError,
} from './resilience.errors.js';
import type { TimeoutEvent } from './timeout.policy.js';

const settings: PipelineSettings = {
  breakerFailures: 2,
  breakerFailureRatio: 0.5,
  breakerMinCalls: 100,
  breakerWindowMs: 10_000,
  breakerSlowCallMs: 0,
  breakerCooldownMs: 1000,
  breakerHalfOpenProbes: 1,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 0,
  retryMaxDelayMs: 0,
  retryBudgetRatio: 1,
  timeoutMs: 50,
  deadlineMs: 1000,
  bulkheadMaxConcurrent: 10,
  bulkheadMaxQueue: 10,
  bulkheadQueueTimeoutMs: 100,
};

const unavailable = () => Object.assign(new Error('503'), { status: 503 });
const hang = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('ResiliencePipeline', () => {
  it('retries a transient failure and returns the later success', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    let calls = 0;
    const result = pipeline.execute(async () => {
      calls++;
      if (calls < 3) throw unavailable();
      return 'ok';
    });
    await jest.advanceTimersByTimeAsync(10);
    await expect(result).resolves.toBe('ok');
    expect(calls).toBe(3);
    expect(pipeline.breaker.state).toBe('closed');
  });

  it('never retries a call run with executeOnce', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    let calls = 0;
    const result = pipeline.executeOnce(async () => {
      calls++;
      throw unavailable();
    });
    await expect(result).rejects.toMatchObject({ status: 503 });
    expect(calls).toBe(1);
  });

  it('times out each attempt, aborting its signal, and retries it', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const reasons: unknown[] = [];
    const result = pipeline.execute(async ({ signal }) => {
      try {
        return await hang(signal);
      } catch (error) {
        reasons.push(error);
        throw error;
      }
    });
    const settled = result.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(150);
    const error = await settled;
    expect(isTimeoutError(error) && error.scope === 'attempt').toBe(true);
    expect(reasons).toHaveLength(3);
    for (const r of reasons) expect(r).toBeInstanceOf(TimeoutError);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stops the whole operation at the deadline with a deadline TimeoutError', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, deadlineMs: 70, timeoutMs: 50 });
    const result = pipeline.execute(({ signal }) => hang(signal));
    const settled = result.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(70);
    const error = await settled;
    expect(isTimeoutError(error) && error.scope === 'deadline').toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it("keeps the caller's own abort reason, distinct from timeouts and the breaker", async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const caller = new AbortController();
    const mine = new CancelledError('caller', 'user left');
    const result = pipeline.execute(({ signal }) => hang(signal), caller.signal);
    const assertion = expect(result).rejects.toBe(mine);
    await jest.advanceTimersByTimeAsync(10);
    caller.abort(mine);
    await assertion;
    // A cancellation says nothing about the dependency: the breaker did not count it.
    expect(pipeline.breaker.snapshot().consecutiveFailures).toBe(0);
  });

  it('opens after consecutive failed operations and then fails fast without calling', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, retryMaxAttempts: 1 });
    const fn = jest.fn(async (): Promise<void> => {
      throw unavailable();
    });
    await expect(pipeline.execute(fn)).rejects.toMatchObject({ status: 503 });
    await expect(pipeline.execute(fn)).rejects.toMatchObject({ status: 503 });
    const rejected = pipeline.execute(fn);
    await expect(rejected).rejects.toBeInstanceOf(BrokenCircuitError);
    const again = await pipeline.execute(fn).catch((e: unknown) => e);
    expect(isBrokenCircuitError(again) && again.retryAfterMs === 1000).toBe(true);
    expect(fn).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1000);
    fn.mockImplementationOnce(async () => undefined);
    await expect(pipeline.execute(fn)).resolves.toBeUndefined();
    expect(pipeline.breaker.state).toBe('closed');
  });
});

describe('countsAgainstDependency', () => {
  it.each([
    [Object.assign(new Error('x'), { status: 503 }), true],
    [Object.assign(new Error('x'), { response: { status: 500 } }), true],
    [Object.assign(new Error('x'), { status: 429 }), true],
    [Object.assign(new Error('x'), { status: 408 }), true],
    [Object.assign(new Error('x'), { code: 'ECONNRESET' }), true],
    [new TimeoutError('p', 10, 'attempt'), true],
    [Object.assign(new Error('x'), { status: 404 }), false],
    [Object.assign(new Error('x'), { statusCode: 400 }), false],
    [new CancelledError('p', 'gone'), false],
    [new BulkheadRejectedError('p', 'full', 10), false],
    [new ConcurrencyLimitError('p', 8, 40), false],
    [new RateLimitedError('p', 10), false],
  ])('%p -> %p', (error, expected) => {
    expect(countsAgainstDependency(error)).toBe(expected);
  });
});

describe('ResiliencePipeline: deadline and attempt timeout on one controller', () => {
  const listenersOf = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

  it('runs the first attempt on one controller and one timer, and leaves a returned signal un-aborted', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const caller = new AbortController();
    let workSignal: AbortSignal | undefined;
    let timersDuring = -1;
    const result = await pipeline.execute(({ signal }) => {
      workSignal = signal;
      timersDuring = jest.getTimerCount();
      return 'ok';
    }, caller.signal);
    expect(result).toBe('ok');
    expect(timersDuring).toBe(1);
    expect(workSignal).not.toBe(caller.signal);
    expect(jest.getTimerCount()).toBe(0);
    expect(listenersOf(caller.signal)).toBe(0);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(workSignal!.aborted).toBe(false);
  });

  it('gives a retry after an attempt timeout a fresh, live signal and emits one attempt event per timeout', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, retryMaxAttempts: 2 });
    const events: TimeoutEvent[] = [];
    pipeline.attemptTimeout.onTimeout((e) => events.push(e));
    pipeline.deadline.onTimeout((e) => events.push(e));
    const signals: AbortSignal[] = [];
    const result = pipeline.execute(({ signal }) => {
      signals.push(signal);
      return signals.length === 1 ? hang(signal) : Promise.resolve('second');
    });
    await jest.advanceTimersByTimeAsync(50);
    await expect(result).resolves.toBe('second');
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals[0]!.reason).toMatchObject({ name: 'TimeoutError', scope: 'attempt', timeoutMs: 50 });
    expect(signals[1]!.aborted).toBe(false);
    expect(events).toEqual([{ name: 'p', timeoutMs: 50, scope: 'attempt' }]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('runs the next attempt on the same controller after a failure that was not a timeout', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const signals: AbortSignal[] = [];
    const result = pipeline.execute(({ signal }) => {
      signals.push(signal);
      if (signals.length === 1) throw unavailable();
      return 'ok';
    });
    await jest.advanceTimersByTimeAsync(1);
    await expect(result).resolves.toBe('ok');
    expect(signals[0]).toBe(signals[1]);
  });

  it('surfaces the deadline, not the attempt, when the deadline is shorter, with only its event', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, deadlineMs: 30, timeoutMs: 50 });
    const events: TimeoutEvent[] = [];
    pipeline.attemptTimeout.onTimeout((e) => events.push(e));
    pipeline.deadline.onTimeout((e) => events.push(e));
    let workSignal: AbortSignal | undefined;
    const settled = pipeline
      .execute(({ signal }) => {
        workSignal = signal;
        return new Promise<never>(() => undefined); // ignores its signal
      })
      .catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(29);
    expect(workSignal!.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const error = await settled;
    expect(error).toMatchObject({ name: 'TimeoutError', scope: 'deadline', timeoutMs: 30 });
    expect(workSignal!.reason).toBe(error);
    expect(events).toEqual([{ name: 'p', timeoutMs: 30, scope: 'deadline' }]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('cuts the last attempt short at the deadline after attempt timeouts', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, deadlineMs: 120, timeoutMs: 50 });
    const reasons: unknown[] = [];
    const settled = pipeline
      .execute(async ({ signal }) => {
        try {
          return await hang(signal);
        } catch (error) {
          reasons.push(error);
          throw error;
        }
      })
      .catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(119);
    expect(reasons.map((r) => (r as TimeoutError).scope)).toEqual(['attempt', 'attempt']);
    await jest.advanceTimersByTimeAsync(1);
    expect(await settled).toMatchObject({ scope: 'deadline', timeoutMs: 120 });
    expect(reasons.map((r) => (r as TimeoutError).scope)).toEqual(['attempt', 'attempt', 'deadline']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('starts the attempt timeout when the attempt starts, after a wait in the bulkhead queue', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, bulkheadMaxConcurrent: 1, retryMaxAttempts: 1 });
    let release: (() => void) | undefined;
    const first = pipeline.execute(
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve('first');
        }),
    );
    let startedAt: number | undefined;
    const second = pipeline
      .execute(({ signal }) => {
        startedAt = Date.now();
        return hang(signal);
      })
      .catch((e: unknown) => e);
    const t0 = Date.now();
    await jest.advanceTimersByTimeAsync(30);
    release!();
    await expect(first).resolves.toBe('first');
    await jest.advanceTimersByTimeAsync(0);
    expect(startedAt! - t0).toBe(30);
    await jest.advanceTimersByTimeAsync(49);
    let done = false;
    void second.then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(await second).toMatchObject({ scope: 'attempt', timeoutMs: 50 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('does not time out a first attempt still waiting in the bulkhead queue; the deadline bounds the wait', async () => {
    const pipeline = new ResiliencePipeline('p', {
      ...settings,
      bulkheadMaxConcurrent: 1,
      bulkheadQueueTimeoutMs: 10_000,
      deadlineMs: 80,
      timeoutMs: 50,
    });
    const holderCaller = new AbortController();
    const holder = pipeline.execute(({ signal }) => hang(signal), holderCaller.signal).catch((e: unknown) => e);
    let startedAt: number | undefined;
    let waiterSignal: AbortSignal | undefined;
    const t0 = Date.now();
    const waiter = pipeline
      .execute(({ signal }) => {
        startedAt = Date.now() - t0;
        waiterSignal = signal;
        return hang(signal);
      })
      .catch((e: unknown) => e);
    // Its first timer (armed for an attempt of 50 ms) fires while it is still queued: nothing aborts.
    await jest.advanceTimersByTimeAsync(70);
    expect(startedAt).toBeUndefined();
    holderCaller.abort(new CancelledError('holder', 'done'));
    await holder;
    await jest.advanceTimersByTimeAsync(0);
    expect(startedAt).toBe(70);
    expect(waiterSignal!.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(10);
    expect(await waiter).toMatchObject({ scope: 'deadline', timeoutMs: 80 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it("passes the caller's reason through during a retry's wait after an attempt timeout, leaving no listener", async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, retryBaseDelayMs: 100, retryMaxDelayMs: 100 });
    const caller = new AbortController();
    const mine = new CancelledError('caller', 'gone');
    const settled = pipeline.execute(({ signal }) => hang(signal), caller.signal).catch((e: unknown) => e);
    expect(listenersOf(caller.signal)).toBe(1);
    await jest.advanceTimersByTimeAsync(55);
    caller.abort(mine);
    expect(await settled).toBe(mine);
    expect(listenersOf(caller.signal)).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejects at once with an already-aborted caller reason, without calling fn', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const caller = new AbortController();
    const reason = new Error('before start');
    caller.abort(reason);
    const fn = jest.fn(() => 'ran');
    await expect(pipeline.execute(fn, caller.signal)).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('passes a synchronous throw of fn through (not retried when not transient)', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const thrown = new Error('sync');
    await expect(
      pipeline.executeOnce(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('ResiliencePipeline: a caller whose own deadline comes first (abortsAt)', () => {
  it('runs on the caller signal with no controller or timer of its own', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const caller = new AbortController();
    let workSignal: AbortSignal | undefined;
    let timersDuring = -1;
    const result = await pipeline.execute(
      ({ signal }) => {
        workSignal = signal;
        timersDuring = jest.getTimerCount();
        return 'ok';
      },
      caller.signal,
      { abortsAt: Date.now() + 50 },
    );
    expect(result).toBe('ok');
    expect(workSignal).toBe(caller.signal);
    expect(timersDuring).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it("rejects at once with the caller's reason when it aborts, and releases the bulkhead slot", async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const caller = new AbortController();
    const reason = new TimeoutError('profile', 40, 'deadline');
    const settled = pipeline
      .execute(() => new Promise<never>(() => undefined), caller.signal, { abortsAt: Date.now() + 40 })
      .catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(40);
    caller.abort(reason);
    expect(await settled).toBe(reason);
    expect(pipeline.bulkhead.snapshot().active).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('retries a transient failure on the caller signal', async () => {
    const pipeline = new ResiliencePipeline('p', settings);
    const caller = new AbortController();
    const signals: AbortSignal[] = [];
    const result = pipeline.execute(
      ({ signal }) => {
        signals.push(signal);
        if (signals.length < 3) throw unavailable();
        return 'ok';
      },
      caller.signal,
      { abortsAt: Date.now() + 50 },
    );
    await jest.advanceTimersByTimeAsync(5);
    await expect(result).resolves.toBe('ok');
    expect(signals).toEqual([caller.signal, caller.signal, caller.signal]);
  });

  it('keeps its own timeouts when they could fire before abortsAt', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, retryMaxAttempts: 1 });
    const caller = new AbortController();
    const settled = pipeline
      .execute(({ signal }) => hang(signal), caller.signal, { abortsAt: Date.now() + 51 })
      .catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(50);
    expect(await settled).toMatchObject({ scope: 'attempt', timeoutMs: 50 });
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('ResiliencePipeline with hedging and the adaptive limit', () => {
  const slowThenFast = () => {
    const signals: AbortSignal[] = [];
    const fn = ({ signal }: { signal: AbortSignal }) => {
      signals.push(signal);
      const ms = signals.length === 1 ? 40 : 5;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          resolve(signals.length === 1 ? 'first' : `leg ${String(signals.indexOf(signal) + 1)}`);
        }, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason as Error);
        });
      });
    };
    return { fn, signals };
  };

  it('hedges an idempotent call past the delay, inside the attempt timeout', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, hedge: { delayMs: 10, budgetPercent: 100 } });
    const { fn, signals } = slowThenFast();
    const result = pipeline.execute(fn);
    await jest.advanceTimersByTimeAsync(20);
    await expect(result).resolves.toBe('leg 2');
    expect(signals).toHaveLength(2);
    expect(signals[0]?.aborted).toBe(true);
    expect(pipeline.snapshot().hedge?.budget).toMatchObject({ calls: 1, hedges: 1 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('never hedges a call that must not be repeated (executeOnce)', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, hedge: { delayMs: 10, budgetPercent: 100 } });
    const { fn, signals } = slowThenFast();
    const result = pipeline.executeOnce(fn);
    await jest.advanceTimersByTimeAsync(45);
    await expect(result).resolves.toBe('first');
    expect(signals).toHaveLength(1);
  });

  it('sends no hedge while the breaker is half-open', async () => {
    const pipeline = new ResiliencePipeline('p', {
      ...settings,
      retryMaxAttempts: 1,
      hedge: { delayMs: 10, budgetPercent: 100 },
    });
    for (let i = 0; i < 2; i++) await pipeline.execute(() => Promise.reject(unavailable())).catch(() => undefined);
    expect(pipeline.breaker.state).toBe('open');
    await jest.advanceTimersByTimeAsync(1000);
    expect(pipeline.breaker.state).toBe('half-open');
    const { fn, signals } = slowThenFast();
    const probe = pipeline.execute(fn);
    await jest.advanceTimersByTimeAsync(45);
    await expect(probe).resolves.toBe('first');
    expect(signals).toHaveLength(1);
    expect(pipeline.breaker.state).toBe('closed');
  });

  it('stops retrying calls in flight once the breaker opens (here: opened by another instance)', async () => {
    const pipeline = new ResiliencePipeline('p', { ...settings, retryBaseDelayMs: 100, retryMaxDelayMs: 100 });
    let attempts = 0;
    const failing = () => {
      attempts++;
      return Promise.reject(unavailable());
    };
    // Ten calls fail their first attempt together and wait to retry.
    const calls = Array.from({ length: 10 }, () => pipeline.execute(failing).catch((e: unknown) => e));
    await jest.advanceTimersByTimeAsync(0);
    expect(attempts).toBe(10);
    expect(pipeline.breaker.applyRemote('open')).toBe(true);
    await jest.advanceTimersByTimeAsync(500);
    const errors = await Promise.all(calls);
    // Without the check, each would have gone on to its second and third attempts.
    expect(attempts).toBe(10);
    expect(errors.every((e) => (e as { status?: number }).status === 503)).toBe(true);
  });

  it('admits calls through the learnt limit instead of the bulkhead, refusing the excess at once', async () => {
    const pipeline = new ResiliencePipeline('p', {
      ...settings,
      bulkheadMaxConcurrent: 1,
      bulkheadMaxQueue: 0,
      adaptiveConcurrency: {
        minLimit: 3,
        maxLimit: 50,
        initialLimit: 10,
        smoothing: 0.2,
        tolerance: 1.5,
        windowMs: 100,
        probeIntervalMs: 60_000,
      },
    });
    expect(pipeline.snapshot()).toMatchObject({ concurrency: 'adaptive', adaptiveLimit: { limit: 3 } });
    // While no-load latency is unknown, the limit is its minimum: three run, the fourth is refused.
    const running = Array.from({ length: 3 }, () =>
      pipeline.execute(({ signal }) => hang(signal)).catch((e: unknown) => e),
    );
    await expect(pipeline.execute(() => 'never')).rejects.toBeInstanceOf(ConcurrencyLimitError);
    expect(pipeline.bulkhead.snapshot().active).toBe(0); // the bulkhead is not in the way
    await jest.advanceTimersByTimeAsync(1100); // the deadline ends them
    expect((await Promise.all(running)).every(isTimeoutError)).toBe(true);
    expect(pipeline.snapshot().adaptiveLimit?.inFlight).toBe(0);
  });
});
