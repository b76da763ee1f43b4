import { describe, expect, it } from '@jest/globals';
import { RetryBudget } from './retry-budget.js';

/** A clock the test moves by hand. */
function manualClock(start = 0) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function grantCount(budget: RetryBudget, tries: number): number {
  let granted = 0;
  for (let i = 0; i < tries; i++) if (budget.tryAcquireRetry()) granted++;
  return granted;
}

describe('RetryBudget', () => {
  it('with ratio 0.2 and no floor, 100 calls that all want to retry get exactly 20 retries', () => {
    const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 0, clock: manualClock() });
    let granted = 0;
    for (let call = 0; call < 100; call++) {
      budget.recordCall();
      // Every call would like two retries.
      granted += grantCount(budget, 2);
    }
    expect(granted).toBe(20);
    expect(budget.snapshot()).toEqual({ calls: 100, retries: 20, ratio: 0.2, maxRetries: 20, exhausted: true });
  });

  it('never lets retries get ahead of the ratio, even in a burst', () => {
    const budget = new RetryBudget({ ratio: 0.2, clock: manualClock() });
    for (let call = 0; call < 100; call++) budget.recordCall();
    expect(grantCount(budget, 1_000)).toBe(20);
    expect(budget.tryAcquireRetry()).toBe(false);
  });

  it('allows no retry without calls or floor', () => {
    const budget = new RetryBudget({ ratio: 0.5, clock: manualClock() });
    expect(budget.snapshot()).toEqual({ calls: 0, retries: 0, ratio: 0, maxRetries: 0, exhausted: true });
    expect(budget.tryAcquireRetry()).toBe(false);
  });

  it('minRetriesPerSecond lets low traffic retry a little: 3/s over 10 s is 30 retries', () => {
    const budget = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 3, clock: manualClock() });
    budget.recordCall();
    expect(grantCount(budget, 100)).toBe(30);
    // With enough traffic the ratio takes over from the floor.
    for (let call = 0; call < 199; call++) budget.recordCall();
    expect(budget.snapshot().maxRetries).toBe(40);
    expect(grantCount(budget, 100)).toBe(10);
  });

  it('refills as the window slides past old retries', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0, minRetriesPerSecond: 1, windowMs: 10_000, clock });
    expect(grantCount(budget, 10)).toBe(10);
    expect(budget.snapshot().exhausted).toBe(true);

    clock.advance(9_999);
    expect(budget.tryAcquireRetry()).toBe(false);
    clock.advance(1);
    expect(budget.snapshot()).toMatchObject({ retries: 0, exhausted: false });
    expect(grantCount(budget, 10)).toBe(10);
  });

  it('slides bucket by bucket: only the expired part of the window is forgotten', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0.5, windowMs: 10_000, buckets: 10, clock });
    for (let i = 0; i < 4; i++) budget.recordCall(); // bucket [0, 1000)
    expect(grantCount(budget, 2)).toBe(2);
    clock.advance(5_000);
    for (let i = 0; i < 4; i++) budget.recordCall(); // bucket [5000, 6000)
    expect(grantCount(budget, 5)).toBe(2);
    expect(budget.snapshot()).toMatchObject({ calls: 8, retries: 4 });

    clock.advance(5_000); // t = 10 000: the first bucket leaves the window
    expect(budget.snapshot()).toEqual({ calls: 4, retries: 2, ratio: 0.5, maxRetries: 2, exhausted: true });
    clock.advance(5_000); // t = 15 000: everything left
    expect(budget.snapshot()).toMatchObject({ calls: 0, retries: 0 });
  });

  it('reuses its buckets: memory does not grow with traffic or time', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, windowMs: 1_000, buckets: 4, clock });
    for (let step = 0; step < 10_000; step++) {
      budget.recordCall();
      budget.tryAcquireRetry();
      clock.advance(50);
    }
    const internals = budget as unknown as { ids: unknown[]; calls: unknown[]; retries: unknown[] };
    expect([internals.ids.length, internals.calls.length, internals.retries.length]).toEqual([4, 4, 4]);
    // Now t = 500 000: the window is the current 250 ms bucket and the three before it,
    // [499 250, 500 250), which saw the 15 calls made at 499 250, 499 300, ... 499 950.
    expect(budget.snapshot()).toMatchObject({ calls: 15, retries: 15 });
  });

  it.each([
    [{ ratio: -0.1 }, /ratio/],
    [{ ratio: Number.NaN }, /ratio/],
    [{ ratio: 0.2, minRetriesPerSecond: -1 }, /minRetriesPerSecond/],
    [{ ratio: 0.2, windowMs: 0 }, /windowMs/],
    [{ ratio: 0.2, buckets: 0 }, /buckets/],
    [{ ratio: 0.2, buckets: 2.5 }, /buckets/],
  ])('rejects bad options %j', (options, message) => {
    expect(() => new RetryBudget(options)).toThrow(message);
  });
});
