import { describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';

import type { Clock } from './clock.js';
import { wrap, type Policy } from './policy.js';
import {
  LocalTokenBucketStore,
  RateLimiterPolicy,
  type RateLimiterRejectEvent,
  type RateLimiterStore,
  type TakeResult,
} from './rate-limiter.js';
import { isRateLimitedError, RateLimitedError } from './resilience.errors.js';

/** A clock the tests move by hand: exact, and no sleeping. */
class ManualClock implements Clock {
  t = 1_000;
  now(): number {
    return this.t;
  }
}

const setupStore = (options: { ratePerSec?: number; capacity?: number; maxKeys?: number } = {}) => {
  const clock = new ManualClock();
  const store = new LocalTokenBucketStore({ ratePerSec: 4, capacity: 2, clock, ...options });
  return { clock, store };
};

describe('LocalTokenBucketStore', () => {
  it('admits a burst of capacity, then denies with the exact wait, then admits after it', async () => {
    const { clock, store } = setupStore();
    await expect(store.take('a')).resolves.toEqual({
      allowed: true,
      remaining: 1,
      retryAfterMs: 0,
      resetMs: 250,
      source: 'local',
    });
    expect(store.takeSync('a')).toMatchObject({ allowed: true, remaining: 0, resetMs: 500 });
    expect(store.takeSync('a')).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 250,
      resetMs: 500,
      source: 'local',
    });
    clock.t += 249;
    expect(store.takeSync('a')).toMatchObject({ allowed: false, retryAfterMs: 1 });
    clock.t += 1;
    expect(store.takeSync('a')).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('keeps one bucket per key', () => {
    const { store } = setupStore();
    store.takeSync('a', 2);
    expect(store.takeSync('a').allowed).toBe(false);
    expect(store.takeSync('b').allowed).toBe(true);
    expect(store.size).toBe(2);
    // A bucket left full is not kept: it equals a missing one.
    expect(store.takeSync('c', 0).allowed).toBe(true);
    expect(store.size).toBe(2);
  });

  it('takes a cost, and rejects a cost outside 0..capacity with a RangeError', async () => {
    const { store } = setupStore({ capacity: 5 });
    expect(store.takeSync('a', 3)).toMatchObject({ allowed: true, remaining: 2 });
    expect(store.takeSync('a', 3)).toMatchObject({ allowed: false, retryAfterMs: 250 });
    await expect(store.take('a', 6)).rejects.toThrow(RangeError);
    await expect(store.take('a', -1)).rejects.toThrow(RangeError);
    expect(() => store.takeSync('a', Number.NaN)).toThrow(RangeError);
  });

  it('peeks without taking', () => {
    const { clock, store } = setupStore();
    expect(store.peek('a')).toBe(2);
    expect(store.size).toBe(0);
    store.takeSync('a', 2);
    expect(store.peek('a')).toBe(0);
    clock.t += 250;
    expect(store.peek('a')).toBe(1);
    expect(store.peek('a')).toBe(1);
  });

  it('validates its options', () => {
    expect(() => new LocalTokenBucketStore({ ratePerSec: 0, capacity: 1 })).toThrow(RangeError);
    expect(() => new LocalTokenBucketStore({ ratePerSec: 1, capacity: -1 })).toThrow(RangeError);
    expect(() => new LocalTokenBucketStore({ ratePerSec: 1, capacity: 1, maxKeys: 0 })).toThrow(RangeError);
    expect(() => new LocalTokenBucketStore({ ratePerSec: 1, capacity: 1, maxKeys: 1.5 })).toThrow(RangeError);
  });

  describe('memory bound', () => {
    it('drops buckets that are full again (they equal a missing bucket)', () => {
      const { clock, store } = setupStore();
      for (let i = 0; i < 10; i++) store.takeSync(`k${String(i)}`);
      expect(store.size).toBe(10);
      clock.t += 250; // every bucket refilled
      for (let i = 0; i < 3; i++) store.takeSync('fresh');
      expect(store.size).toBeLessThan(10);
      for (let i = 0; i < 3; i++) store.takeSync('fresh');
      expect(store.size).toBe(1);
      // Dropping them changed nothing: each key still gets its full burst.
      expect(store.takeSync('k0', 2).allowed).toBe(true);
    });

    it('keeps buckets still refilling', () => {
      const { clock, store } = setupStore();
      store.takeSync('drained', 2);
      clock.t += 100;
      for (let i = 0; i < 10; i++) store.takeSync('other');
      expect(store.peek('drained')).toBe(0);
      expect(store.takeSync('drained').allowed).toBe(false);
    });

    it('caps the number of buckets, dropping the least recently used', () => {
      const { store } = setupStore({ maxKeys: 3 });
      store.takeSync('a', 2);
      store.takeSync('b', 2);
      store.takeSync('c', 2);
      store.takeSync('a', 0); // touch: b is now the least recently used
      store.takeSync('d', 2);
      expect(store.size).toBe(3);
      expect(store.peek('a')).toBe(0);
      expect(store.peek('c')).toBe(0);
      expect(store.peek('d')).toBe(0);
      expect(store.peek('b')).toBe(2); // evicted: a fresh, full bucket
    });

    it('never holds more than maxKeys buckets, whatever the traffic', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 20 }),
          fc.array(fc.record({ key: fc.integer({ min: 0, max: 60 }), stepMs: fc.nat(300) }), {
            maxLength: 300,
            size: 'medium',
          }),
          (maxKeys, requests) => {
            const { clock, store } = setupStore({ maxKeys });
            for (const { key, stepMs } of requests) {
              clock.t += stepMs;
              store.takeSync(String(key));
              expect(store.size).toBeLessThanOrEqual(maxKeys);
            }
          },
        ),
        { numRuns: 100 },
      );
    });
  });
});

describe('RateLimiterPolicy', () => {
  const setup = (options: { key?: string; store?: RateLimiterStore } = {}) => {
    const clock = new ManualClock();
    const policy = new RateLimiterPolicy({ name: 'geocoder', ratePerSec: 4, capacity: 2, clock, ...options });
    const rejections: RateLimiterRejectEvent[] = [];
    policy.onReject((event) => rejections.push(event));
    return { clock, policy, rejections };
  };

  it('runs fn while tokens last, passing the caller signal', async () => {
    const { policy } = setup();
    const controller = new AbortController();
    const fn = jest.fn(({ signal }: { signal: AbortSignal }) => signal === controller.signal);
    await expect(policy.execute(fn, controller.signal)).resolves.toBe(true);
    await expect(policy.execute(fn, controller.signal)).resolves.toBe(true);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('rejects at once with RateLimitedError(name, exact retryAfterMs) without calling fn', async () => {
    const { clock, policy, rejections } = setup();
    await policy.execute(() => 1);
    await policy.execute(() => 2);
    const fn = jest.fn(() => 3);

    const error = await policy.execute(fn).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(isRateLimitedError(error)).toBe(true);
    expect(error).toMatchObject({ policy: 'geocoder', retryAfterMs: 250 });
    expect(fn).not.toHaveBeenCalled();
    expect(rejections).toEqual([{ name: 'geocoder', key: 'geocoder', retryAfterMs: 250, source: 'local' }]);

    clock.t += 249;
    await expect(policy.execute(fn)).rejects.toMatchObject({ retryAfterMs: 1 });
    clock.t += 1;
    await expect(policy.execute(fn)).resolves.toBe(3);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('passes failures of fn through, the token spent', async () => {
    const { policy } = setup();
    const boom = new Error('boom');
    await expect(
      policy.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(policy.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    await expect(policy.execute(() => 1)).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('rejects an already-aborted call with its reason, taking no token', async () => {
    const { policy } = setup();
    const reason = new Error('gone');
    const fn = jest.fn(() => 1);
    await expect(policy.execute(fn, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(policy.snapshot()).toMatchObject({ remaining: 2, admitted: 0, rejected: 0 });
  });

  it('uses the key option for its bucket, and tryTake any key with a cost', async () => {
    const clock = new ManualClock();
    const store = new LocalTokenBucketStore({ ratePerSec: 4, capacity: 2, clock });
    const policy = new RateLimiterPolicy({ name: 'api', ratePerSec: 4, capacity: 2, store, key: 'global' });
    const rejections: RateLimiterRejectEvent[] = [];
    policy.onReject((event) => rejections.push(event));

    await policy.execute(() => undefined);
    expect(store.peek('global')).toBe(1);
    expect(store.peek('api')).toBe(2);

    await expect(policy.tryTake('client:1', 2)).resolves.toMatchObject({ allowed: true, remaining: 0 });
    const denied = await policy.tryTake('client:1');
    expect(denied).toEqual({ allowed: false, remaining: 0, retryAfterMs: 250, resetMs: 500, source: 'local' });
    expect(rejections).toEqual([{ name: 'api', key: 'client:1', retryAfterMs: 250, source: 'local' }]);
    // Per-client decisions do not count as the policy's own.
    expect(policy.snapshot()).toMatchObject({ admitted: 1, rejected: 0 });
  });

  it('reports its bucket in snapshot()', async () => {
    const { clock, policy } = setup();
    expect(policy.snapshot()).toEqual({
      name: 'geocoder',
      key: 'geocoder',
      ratePerSec: 4,
      capacity: 2,
      remaining: 2,
      source: undefined,
      admitted: 0,
      rejected: 0,
    });
    await policy.execute(() => undefined);
    await policy.execute(() => undefined);
    await policy.execute(() => undefined).catch(() => undefined);
    expect(policy.snapshot()).toMatchObject({ remaining: 0, source: 'local', admitted: 2, rejected: 1 });
    clock.t += 500;
    expect(policy.snapshot().remaining).toBe(2); // the local store tells the current level
  });

  it('reports the last known level for a store that cannot peek', async () => {
    const result: TakeResult = { allowed: true, remaining: 7, retryAfterMs: 0, resetMs: 10, source: 'redis' };
    const take = jest.fn((_key: string) => Promise.resolve(result));
    const store: RateLimiterStore = { limits: { ratePerSec: 4, capacity: 10 }, take };
    const policy = new RateLimiterPolicy({ name: 'shared', ratePerSec: 4, capacity: 10, store });
    expect(policy.snapshot().remaining).toBe(10);
    await policy.execute(() => undefined);
    expect(take).toHaveBeenCalledWith('shared');
    expect(policy.snapshot()).toMatchObject({ remaining: 7, source: 'redis', admitted: 1 });
  });

  it('refuses a store whose limits differ from its own, and invalid limits', () => {
    const store = new LocalTokenBucketStore({ ratePerSec: 4, capacity: 3 });
    expect(() => new RateLimiterPolicy({ name: 'x', ratePerSec: 4, capacity: 2, store })).toThrow(/capacity/);
    expect(() => new RateLimiterPolicy({ name: 'x', ratePerSec: 0, capacity: 2 })).toThrow(RangeError);
  });

  it('composes with wrap(), rejecting before inner policies run', async () => {
    const { policy } = setup();
    let innerRuns = 0;
    const inner: Policy = {
      execute: async (fn, signal) => {
        innerRuns++;
        return fn({ signal: signal ?? new AbortController().signal });
      },
    };
    const pipeline = wrap(policy, inner);
    await pipeline.execute(() => 1);
    await pipeline.execute(() => 1);
    await expect(pipeline.execute(() => 1)).rejects.toBeInstanceOf(RateLimitedError);
    expect(innerRuns).toBe(2);
  });
});
