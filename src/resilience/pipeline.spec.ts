import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { countsAgainstDependency, ResiliencePipeline, type PipelineSettings } from './pipeline.js';
import {
  BrokenCircuitError,
  CancelledError,
  isBrokenCircuitError,
  isTimeoutError,
  TimeoutError,
} from './resilience.errors.js';

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
  ])('%p -> %p', (error, expected) => {
    expect(countsAgainstDependency(error)).toBe(expected);
  });
});
