import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { exponentialBackoff } from './backoff.js';
import { wrap, type PolicyContext } from './policy.js';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CancelledError,
  RateLimitedError,
  TimeoutError,
} from './resilience.errors.js';
import { RetryBudget } from './retry-budget.js';
import { RetryPolicy, type RetryEvent, type RetryGiveUpEvent, type RetryPolicyOptions } from './retry.policy.js';

const withCode = (code: string): Error => Object.assign(new Error(code), { code });
const httpError = (status: number, headers: Record<string, string> = {}): Error =>
  Object.assign(new Error(`HTTP ${String(status)}`), { response: { status, headers } });

/** Observes a promise's outcome without awaiting it, so the test can check "not settled yet". */
function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown; rejected: boolean } = {
    settled: false,
    rejected: false,
  };
  const done = promise.then(
    (value) => {
      Object.assign(state, { settled: true, value });
    },
    (error: unknown) => {
      Object.assign(state, { settled: true, rejected: true, error });
    },
  );
  return { state, done };
}

/** An operation that fails with the given errors in turn, then succeeds; records when each attempt starts. */
function scripted(...failures: unknown[]) {
  const starts: number[] = [];
  const signals: AbortSignal[] = [];
  const fn = jest.fn(async ({ signal }: PolicyContext): Promise<string> => {
    starts.push(performance.now());
    signals.push(signal);
    const failure = failures[starts.length - 1];
    if (starts.length <= failures.length) throw failure;
    return 'ok';
  });
  return { fn, starts, signals };
}

/** Fails every time with `error`. */
function failing(error: unknown) {
  return jest.fn(async (_context: PolicyContext): Promise<string> => {
    throw error;
  });
}

function policy(overrides: Partial<RetryPolicyOptions> = {}) {
  const retry = new RetryPolicy({ name: 'users-api', maxAttempts: 3, backoff: () => 0, ...overrides });
  const retries: RetryEvent[] = [];
  const giveUps: RetryGiveUpEvent[] = [];
  retry.onRetry((e) => retries.push(e));
  retry.onGiveUp((e) => giveUps.push(e));
  return { retry, retries, giveUps };
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  expect(jest.getTimerCount()).toBe(0);
  jest.useRealTimers();
});

describe('RetryPolicy: what is retried', () => {
  it.each<[string, unknown]>([
    ['ECONNRESET', withCode('ECONNRESET')],
    ['ECONNREFUSED', withCode('ECONNREFUSED')],
    ['ETIMEDOUT', withCode('ETIMEDOUT')],
    ['EAI_AGAIN', withCode('EAI_AGAIN')],
    ['UND_ERR_SOCKET', new TypeError('fetch failed', { cause: withCode('UND_ERR_SOCKET') })],
    ['an attempt TimeoutError', new TimeoutError('users-api', 200, 'attempt')],
    ['502', httpError(502)],
    ['503', httpError(503)],
    ['504', httpError(504)],
    ['429', httpError(429)],
  ])('retries %s', async (_, error) => {
    const { retry, retries, giveUps } = policy();
    const { fn } = scripted(error);
    await expect(retry.execute(fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(2);
    expect(retries).toEqual([{ name: 'users-api', attempt: 1, delayMs: 0, error }]);
    expect(giveUps).toEqual([]);
  });

  it.each<[string, unknown]>([
    ['a deadline TimeoutError', new TimeoutError('users-api', 2_000, 'deadline')],
    ['CancelledError', new CancelledError('users-api', 'gone')],
    ['BrokenCircuitError', new BrokenCircuitError('users-api', 5_000)],
    ['BulkheadRejectedError', new BulkheadRejectedError('users-api', 'full', 0)],
    ['RateLimitedError', new RateLimitedError('users-api', 100)],
    ['400', httpError(400)],
    ['401', httpError(401)],
    ['404', httpError(404)],
    ['409', httpError(409)],
    ['422', httpError(422)],
    ['500', httpError(500)],
    ['ENOTFOUND', withCode('ENOTFOUND')],
    ['a plain Error', new Error('bug')],
  ])('does not retry %s and rethrows it unchanged', async (_, error) => {
    const { retry, retries, giveUps } = policy();
    const fn = failing(error);
    await expect(retry.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(retries).toEqual([]);
    expect(giveUps).toEqual([{ name: 'users-api', attempts: 1, error, reason: 'not_transient' }]);
  });

  it('retries a synchronous throw too', async () => {
    const { retry } = policy();
    let calls = 0;
    const result = await retry.execute(() => {
      calls++;
      if (calls === 1) throw withCode('EPIPE');
      return 42;
    });
    expect([result, calls]).toEqual([42, 2]);
  });

  it('uses a custom classifier', async () => {
    const special = new Error('flaky');
    const { retry } = policy({ classify: (error) => ({ transient: error === special }) });
    const { fn } = scripted(special, special);
    await expect(retry.execute(fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(3);
    await expect(retry.execute(failing(withCode('ECONNRESET')))).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('hands every attempt the caller signal', async () => {
    const { retry } = policy();
    const controller = new AbortController();
    const { fn, signals } = scripted(withCode('ECONNRESET'), withCode('ECONNRESET'));
    await retry.execute(fn, controller.signal);
    expect(signals).toEqual([controller.signal, controller.signal, controller.signal]);
  });
});

describe('RetryPolicy: timing', () => {
  it('waits exactly backoff(n) before retry n', async () => {
    const backoff = exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 10_000, random: () => 0.5 });
    const { retry, retries, giveUps } = policy({ backoff, maxAttempts: 3 });
    const error = withCode('ECONNRESET');
    const fn = failing(error);
    const { state, done } = track(retry.execute(fn));
    expect(fn).toHaveBeenCalledTimes(1);

    await jest.advanceTimersByTimeAsync(49);
    expect(fn).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1); // t = 50 = backoff(1)
    expect(fn).toHaveBeenCalledTimes(2);

    await jest.advanceTimersByTimeAsync(99);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(state.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1); // t = 150: + backoff(2) = 100
    expect(fn).toHaveBeenCalledTimes(3);

    await done;
    expect(state).toMatchObject({ rejected: true, error });
    expect(retries.map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 50],
      [2, 100],
    ]);
    expect(giveUps).toEqual([{ name: 'users-api', attempts: 3, error, reason: 'max_attempts' }]);
  });

  it('records when attempts start: 0, then after each delay', async () => {
    const backoff = exponentialBackoff({ baseDelayMs: 40, maxDelayMs: 1_000, jitter: 'none' });
    const { retry } = policy({ backoff, maxAttempts: 4 });
    const { fn, starts } = scripted(withCode('ECONNRESET'), httpError(503), httpError(502));
    const { done, state } = track(retry.execute(fn));
    await jest.advanceTimersByTimeAsync(1_000);
    await done;
    expect(state.value).toBe('ok');
    const t0 = starts[0]!;
    expect(starts.map((t) => t - t0)).toEqual([0, 40, 120, 280]);
  });

  it('honours Retry-After in delta-seconds when longer than the backoff', async () => {
    const { retry, retries } = policy({ backoff: () => 100 });
    const { fn } = scripted(httpError(429, { 'retry-after': '2' }));
    const { state, done } = track(retry.execute(fn));
    await jest.advanceTimersByTimeAsync(1_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(2);
    await done;
    expect(state.value).toBe('ok');
    expect(retries[0]?.delayMs).toBe(2_000);
  });

  it('honours a Retry-After HTTP-date', async () => {
    jest.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const { retry } = policy({ backoff: () => 100 });
    const { fn } = scripted(httpError(503, { 'retry-after': 'Tue, 01 Jan 2030 00:00:03 GMT' }));
    const { state, done } = track(retry.execute(fn));
    await jest.advanceTimersByTimeAsync(2_999);
    expect(fn).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(2);
    await done;
    expect(state.value).toBe('ok');
  });

  it('keeps the backoff when it is longer than Retry-After', async () => {
    const { retry, retries } = policy({ backoff: () => 1_500 });
    const { fn } = scripted(httpError(429, { 'retry-after': '1' }));
    const { done } = track(retry.execute(fn));
    await jest.advanceTimersByTimeAsync(1_499);
    expect(fn).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    await done;
    expect(fn).toHaveBeenCalledTimes(2);
    expect(retries[0]?.delayMs).toBe(1_500);
  });

  it('gives up at once when Retry-After is beyond maxRetryAfterMs', async () => {
    const { retry, giveUps } = policy({ maxRetryAfterMs: 30_000 });
    const error = httpError(429, { 'retry-after': '31' });
    const fn = failing(error);
    await expect(retry.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(giveUps).toEqual([{ name: 'users-api', attempts: 1, error, reason: 'retry_after_too_long' }]);
  });

  it('still waits a Retry-After exactly at maxRetryAfterMs', async () => {
    const { retry } = policy({ maxRetryAfterMs: 30_000 });
    const { fn } = scripted(httpError(503, { 'retry-after': '30' }));
    const { done, state } = track(retry.execute(fn));
    await jest.advanceTimersByTimeAsync(30_000);
    await done;
    expect(state.value).toBe('ok');
  });

  it('defaults maxRetryAfterMs to 30 s', async () => {
    const { retry, giveUps } = policy();
    await expect(retry.execute(failing(httpError(429, { 'retry-after': '30.001' })))).rejects.toThrow('HTTP 429');
    expect(giveUps[0]?.reason).toBe('retry_after_too_long');
  });
});

describe('RetryPolicy: limits', () => {
  it.each([1, 2, 4])('makes at most maxAttempts = %d attempts', async (maxAttempts) => {
    const { retry, giveUps } = policy({ maxAttempts });
    const fn = failing(withCode('ECONNRESET'));
    await expect(retry.execute(fn)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(fn).toHaveBeenCalledTimes(maxAttempts);
    expect(giveUps).toMatchObject([{ attempts: maxAttempts, reason: 'max_attempts' }]);
  });

  it('a budget of ratio 0.2 lets 100 failing calls retry at most 20 times', async () => {
    const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 0 });
    const { retry, giveUps } = policy({ budget, maxAttempts: 3 });
    const fn = failing(withCode('ECONNRESET'));
    for (let call = 0; call < 100; call++) {
      await expect(retry.execute(fn)).rejects.toMatchObject({ code: 'ECONNRESET' });
    }
    expect(fn).toHaveBeenCalledTimes(120);
    expect(budget.snapshot()).toMatchObject({ calls: 100, retries: 20 });
    // Retries are granted as soon as the ratio allows, so no call gets two: every one ends on the budget.
    expect(giveUps).toHaveLength(100);
    expect(giveUps.every((e) => e.reason === 'budget_exhausted')).toBe(true);
  });

  it('caps a concurrent storm too: 100 calls failing at once get 20 retries', async () => {
    const budget = new RetryBudget({ ratio: 0.2 });
    const { retry, giveUps } = policy({ budget, maxAttempts: 5, backoff: () => 10 });
    const fn = failing(withCode('ECONNRESET'));
    const calls = Array.from({ length: 100 }, () => track(retry.execute(fn)));
    await jest.advanceTimersByTimeAsync(1_000);
    await Promise.all(calls.map((c) => c.done));
    expect(calls.every((c) => c.state.rejected)).toBe(true);
    expect(fn).toHaveBeenCalledTimes(120);
    expect(giveUps.every((e) => e.reason === 'budget_exhausted')).toBe(true);
  });

  it('rethrows the last error immediately when the budget is exhausted', async () => {
    const budget = new RetryBudget({ ratio: 0 });
    const { retry, retries, giveUps } = policy({ budget, backoff: () => 1_000 });
    const error = httpError(503);
    const fn = failing(error);
    await expect(retry.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(retries).toEqual([]);
    expect(giveUps).toEqual([{ name: 'users-api', attempts: 1, error, reason: 'budget_exhausted' }]);
  });

  it('gives up when canRetry says no, before the backoff and after it', async () => {
    let allowed = false;
    const { retry, giveUps } = policy({ canRetry: () => allowed, backoff: () => 100 });
    const error = httpError(503);
    const fn = failing(error);
    await expect(retry.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(giveUps).toEqual([{ name: 'users-api', attempts: 1, error, reason: 'not_allowed' }]);

    // Allowed when the failure came, refused by the time the backoff is over (a breaker opened meanwhile).
    allowed = true;
    const later = failing(error);
    const outcome = track(retry.execute(later));
    await jest.advanceTimersByTimeAsync(50);
    allowed = false;
    await jest.advanceTimersByTimeAsync(50);
    await outcome.done;
    expect(outcome.state).toMatchObject({ rejected: true, error });
    expect(later).toHaveBeenCalledTimes(1);
    expect(giveUps.at(-1)).toMatchObject({ attempts: 1, reason: 'not_allowed' });
  });

  it('does not spend the budget on failures it would not retry anyway', async () => {
    const budget = new RetryBudget({ ratio: 1 });
    const { retry } = policy({ budget, maxAttempts: 1 });
    await expect(retry.execute(failing(withCode('ECONNRESET')))).rejects.toBeDefined();
    await expect(retry.execute(failing(httpError(400)))).rejects.toBeDefined();
    expect(budget.snapshot()).toMatchObject({ calls: 2, retries: 0 });
  });

  it('the budget refills as its window slides', async () => {
    // One retry per 10 s window, whatever the traffic.
    const budget = new RetryBudget({ ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000 });
    const { retry } = policy({ budget, maxAttempts: 2 });
    const fn = failing(withCode('ECONNRESET'));

    await expect(retry.execute(fn)).rejects.toBeDefined();
    expect(fn).toHaveBeenCalledTimes(2); // retried
    await expect(retry.execute(fn)).rejects.toBeDefined();
    expect(fn).toHaveBeenCalledTimes(3); // budget exhausted

    await jest.advanceTimersByTimeAsync(9_000);
    await expect(retry.execute(fn)).rejects.toBeDefined();
    expect(fn).toHaveBeenCalledTimes(4); // still inside the window

    await jest.advanceTimersByTimeAsync(1_000);
    await expect(retry.execute(fn)).rejects.toBeDefined();
    expect(fn).toHaveBeenCalledTimes(6); // the old retry slid out: retried again
  });
});

describe('RetryPolicy: cancellation', () => {
  it('an abort during the backoff rejects at once with the caller reason; no more attempts, no timer left', async () => {
    const { retry, giveUps } = policy({ backoff: () => 1_000 });
    const controller = new AbortController();
    const fn = failing(withCode('ECONNRESET'));
    const { state, done } = track(retry.execute(fn, controller.signal));
    await jest.advanceTimersByTimeAsync(500);
    expect(jest.getTimerCount()).toBe(1);

    const reason = new Error('client went away');
    controller.abort(reason);
    await done; // settles without any timer advancing
    expect(state).toMatchObject({ rejected: true });
    expect(state.error).toBe(reason);
    expect(jest.getTimerCount()).toBe(0);

    await jest.advanceTimersByTimeAsync(10_000);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(giveUps).toEqual([]);
  });

  it('keeps a non-Error reason intact, and the default DOMException too', async () => {
    const { retry } = policy({ backoff: () => 1_000 });
    const controller = new AbortController();
    const pending = retry.execute(failing(withCode('ECONNRESET')), controller.signal);
    await jest.advanceTimersByTimeAsync(10);
    controller.abort('shutdown');
    await expect(pending).rejects.toBe('shutdown');

    const other = new AbortController();
    const second = retry.execute(failing(withCode('ECONNRESET')), other.signal);
    other.abort();
    await expect(second).rejects.toBe(other.signal.reason);
    expect(other.signal.reason).toMatchObject({ name: 'AbortError' });
  });

  it('never starts an attempt when the signal is already aborted', async () => {
    const budget = new RetryBudget({ ratio: 1 });
    const { retry } = policy({ budget });
    const controller = new AbortController();
    const reason = new Error('too late');
    controller.abort(reason);
    const fn = jest.fn(async () => 'ok');
    await expect(retry.execute(fn, controller.signal)).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(budget.snapshot().calls).toBe(0);
  });

  it('does not retry an attempt that failed because the caller aborted, and rejects with its reason', async () => {
    const { retry, retries } = policy();
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const fn = jest.fn(async (_context: PolicyContext) => {
      controller.abort(reason);
      // The operation reports the abort in its own words, as a network error.
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    });
    await expect(retry.execute(fn, controller.signal)).rejects.toBe(reason);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(retries).toEqual([]);
  });

  it('a deadline (outer policy) aborting the wait ends the retrying with its TimeoutError', async () => {
    const deadline = new TimeoutError('users-api', 300, 'deadline');
    const deadlinePolicy = {
      execute<T>(fn: (context: PolicyContext) => Promise<T> | T): Promise<T> {
        const controller = new AbortController();
        const timer = setTimeout(() => {
          controller.abort(deadline);
        }, 300);
        return Promise.resolve(fn({ signal: controller.signal })).finally(() => {
          clearTimeout(timer);
        });
      },
    };
    const { retry } = policy({ backoff: () => 200, maxAttempts: 10 });
    const fn = failing(withCode('ETIMEDOUT'));
    const { state, done } = track(wrap(deadlinePolicy, retry).execute(fn));
    await jest.advanceTimersByTimeAsync(300);
    await done;
    expect(state.error).toBe(deadline);
    expect(fn).toHaveBeenCalledTimes(2); // t = 0 and t = 200; the deadline hit during the second wait
  });
});

describe('RetryPolicy: idempotency', () => {
  it('withIdempotency(false) never retries, and shares the parent listeners', async () => {
    const { retry, retries, giveUps } = policy();
    const nonIdempotent = retry.withIdempotency(false);
    expect(nonIdempotent.idempotent).toBe(false);
    const error = withCode('ECONNRESET');
    const fn = failing(error);
    await expect(nonIdempotent.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(retries).toEqual([]);
    expect(giveUps).toEqual([{ name: 'users-api', attempts: 1, error, reason: 'not_idempotent' }]);
  });

  it('the constructor option does the same, and withIdempotency(true) turns retrying back on', async () => {
    const { retry } = policy({ idempotent: false });
    const fn = failing(httpError(503));
    await expect(retry.execute(fn)).rejects.toThrow('HTTP 503');
    expect(fn).toHaveBeenCalledTimes(1);

    await expect(retry.withIdempotency(true).execute(fn)).rejects.toThrow('HTTP 503');
    expect(fn).toHaveBeenCalledTimes(4);
    expect(retry.withIdempotency(false)).toBe(retry);
  });

  it('a non-idempotent view shares the budget of its parent', async () => {
    const budget = new RetryBudget({ ratio: 1 });
    const { retry } = policy({ budget });
    await retry.withIdempotency(false).execute(async () => 'ok');
    expect(budget.snapshot().calls).toBe(1);
  });
});

describe('RetryPolicy: options and events', () => {
  it.each([0, 1.5, Number.NaN])('rejects maxAttempts %p', (maxAttempts) => {
    expect(() => new RetryPolicy({ name: 'x', maxAttempts, backoff: () => 0 })).toThrow(/maxAttempts/);
  });

  it.each([-1, Number.POSITIVE_INFINITY, 2 ** 31])('rejects maxRetryAfterMs %p', (maxRetryAfterMs) => {
    expect(() => new RetryPolicy({ name: 'x', maxAttempts: 2, backoff: () => 0, maxRetryAfterMs })).toThrow(
      /maxRetryAfterMs/,
    );
  });

  it('reports a broken backoff loudly', async () => {
    const { retry } = policy({ backoff: () => Number.NaN });
    await expect(retry.execute(failing(withCode('ECONNRESET')))).rejects.toThrow('backoff(1) returned NaN');
  });

  it('succeeds without events on the first attempt and stops emitting once a listener is disposed', async () => {
    const retry = new RetryPolicy({ name: 'users-api', maxAttempts: 2, backoff: () => 0 });
    const seen: RetryEvent[] = [];
    const subscription = retry.onRetry((e) => seen.push(e));
    await expect(retry.execute(async () => 'first')).resolves.toBe('first');
    expect(seen).toEqual([]);
    await retry.execute(scripted(withCode('ECONNRESET')).fn);
    expect(seen).toHaveLength(1);
    subscription.dispose();
    await retry.execute(scripted(withCode('ECONNRESET')).fn);
    expect(seen).toHaveLength(1);
  });
});
