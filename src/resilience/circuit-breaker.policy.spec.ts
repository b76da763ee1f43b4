import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreakerPolicy, type CircuitBreakerOptions, type CircuitStateChange } from './circuit-breaker.policy.js';
import type { Clock } from './clock.js';
import { NEVER_ABORTED, wrap } from './policy.js';
import { BrokenCircuitError, isBrokenCircuitError } from './resilience.errors.js';

/** A clock the tests move by hand: exact, and no sleeping. */
class ManualClock implements Clock {
  t = 0;
  now(): number {
    return this.t;
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const boom = new Error('boom');

function setup(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = new ManualClock();
  const breaker = new CircuitBreakerPolicy({ name: 'svc', cooldownMs: 1_000, clock, ...options });
  const succeed = async (value = 'ok'): Promise<void> => {
    await expect(breaker.execute(() => value)).resolves.toBe(value);
  };
  const fail = async (error: Error = boom): Promise<void> => {
    await expect(
      breaker.execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
  };
  /** Expects a fast rejection: fn must not run. */
  const rejected = async (): Promise<BrokenCircuitError> => {
    const fn = jest.fn(() => 'never');
    const error = await breaker.execute(fn).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(fn).not.toHaveBeenCalled();
    expect(isBrokenCircuitError(error)).toBe(true);
    return error as BrokenCircuitError;
  };
  return { clock, breaker, succeed, fail, rejected };
}

/** Opens the breaker at the clock's current time through the consecutive rule (threshold 1). */
async function tripped(options: Partial<CircuitBreakerOptions> = {}) {
  const ctx = setup({ consecutiveFailures: 1, ...options });
  await ctx.fail();
  expect(ctx.breaker.state).toBe('open');
  return ctx;
}

describe('CircuitBreakerPolicy', () => {
  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  describe('closed -> open by the consecutive rule', () => {
    it('opens on exactly the Nth consecutive failure', async () => {
      const { breaker, fail } = setup({ consecutiveFailures: 3 });
      await fail();
      await fail();
      expect(breaker.snapshot()).toEqual({
        name: 'svc',
        state: 'closed',
        failureRatio: 0,
        calls: 0,
        consecutiveFailures: 2,
      });
      await fail();
      expect(breaker.snapshot()).toEqual({
        name: 'svc',
        state: 'open',
        failureRatio: 0,
        calls: 0,
        consecutiveFailures: 3,
        openUntil: 1_000,
      });
    });

    it('a success resets the consecutive count', async () => {
      const { breaker, succeed, fail } = setup({ consecutiveFailures: 3 });
      await fail();
      await fail();
      await succeed();
      expect(breaker.snapshot().consecutiveFailures).toBe(0);
      await fail();
      await fail();
      expect(breaker.state).toBe('closed');
      await fail();
      expect(breaker.state).toBe('open');
    });

    it('never opens with both rules off', async () => {
      const { breaker, fail } = setup();
      for (let i = 0; i < 50; i++) await fail();
      expect(breaker.state).toBe('closed');
      expect(breaker.snapshot().consecutiveFailures).toBe(50);
    });
  });

  describe('closed -> open by the ratio rule', () => {
    const ratio = { failureRatio: 0.5, minimumCalls: 4, windowMs: 10_000 };

    it('does not open before minimumCalls, then opens on reaching it', async () => {
      const { breaker, fail } = setup(ratio);
      await fail();
      await fail();
      await fail();
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', calls: 3, failureRatio: 1 });
      await fail();
      expect(breaker.snapshot()).toMatchObject({ state: 'open', calls: 4, failureRatio: 1 });
    });

    it('opens when the ratio reaches the threshold (>=), not below it', async () => {
      const { breaker, succeed, fail } = setup(ratio);
      await succeed();
      await succeed();
      await succeed();
      await fail();
      await fail();
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', calls: 5, failureRatio: 0.4 });
      await fail();
      expect(breaker.snapshot()).toMatchObject({ state: 'open', calls: 6, failureRatio: 0.5 });
    });

    it('is checked on failures only: a success never opens the circuit', async () => {
      const { breaker, succeed, fail } = setup(ratio);
      await fail();
      await fail();
      await fail();
      await succeed(); // 3/4 over the minimum, but a success does not trip
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', calls: 4, failureRatio: 0.75 });
      await fail();
      expect(breaker.state).toBe('open');
    });

    it.each([
      [9_999, 'open'],
      [10_000, 'closed'],
    ] as const)('failures age out of the window: 4th failure at t=%i leaves it %s', async (at, expected) => {
      const { clock, breaker, fail } = setup(ratio);
      await fail();
      await fail();
      await fail();
      clock.t = at;
      await fail();
      expect(breaker.state).toBe(expected);
      expect(breaker.snapshot().calls).toBe(expected === 'open' ? 4 : 1);
    });

    it('ages out a bucket (windowMs / 10) at a time', async () => {
      const { clock, breaker, fail, succeed } = setup({ windowMs: 10_000 });
      clock.t = 999; // last ms of bucket 0
      await fail();
      clock.t = 1_000; // bucket 1
      await succeed();
      clock.t = 9_999;
      expect(breaker.snapshot()).toMatchObject({ calls: 2, failureRatio: 0.5 });
      clock.t = 10_000; // bucket 0 leaves the window, 9 001 ms after its call
      expect(breaker.snapshot()).toMatchObject({ calls: 1, failureRatio: 0 });
      clock.t = 11_000;
      expect(breaker.snapshot()).toMatchObject({ calls: 0, failureRatio: 0 });
    });

    it('either rule opens it when both are on', async () => {
      const byRatio = setup({ ...ratio, consecutiveFailures: 5 });
      await byRatio.fail();
      await byRatio.succeed();
      await byRatio.succeed();
      await byRatio.fail(); // 2/4 = 0.5, only one consecutive failure
      expect(byRatio.breaker.snapshot()).toMatchObject({ state: 'open', consecutiveFailures: 1 });

      const byCount = setup({ ...ratio, minimumCalls: 100, consecutiveFailures: 2 });
      await byCount.fail();
      await byCount.fail();
      expect(byCount.breaker.snapshot()).toMatchObject({ state: 'open', calls: 2 });
    });
  });

  describe('slow calls', () => {
    const takes = (clock: ManualClock, ms: number) => async (): Promise<string> => {
      clock.t += ms;
      return 'slow-value';
    };

    it('count slow successes as failures while still returning their value', async () => {
      const { clock, breaker } = setup({ consecutiveFailures: 2, slowCallMs: 100, windowMs: 10_000 });
      await expect(breaker.execute(takes(clock, 101))).resolves.toBe('slow-value');
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 1, failureRatio: 1 });
      await expect(breaker.execute(takes(clock, 101))).resolves.toBe('slow-value');
      expect(breaker.state).toBe('open');
    });

    it('a call of exactly slowCallMs is not slow', async () => {
      const { clock, breaker } = setup({ consecutiveFailures: 1, slowCallMs: 100, windowMs: 10_000 });
      await breaker.execute(takes(clock, 100));
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, failureRatio: 0 });
    });

    it('reports durations and the slow flag on the outcome events', async () => {
      const { clock, breaker } = setup({ slowCallMs: 100 });
      const events: unknown[] = [];
      breaker.onSuccess((e) => events.push(['success', e]));
      breaker.onFailure((e) => events.push(['failure', e]));
      await breaker.execute(takes(clock, 30));
      await breaker.execute(takes(clock, 150));
      await expect(
        breaker.execute(async () => {
          clock.t += 250;
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(events).toEqual([
        ['success', { name: 'svc', durationMs: 30, slow: false }],
        ['success', { name: 'svc', durationMs: 150, slow: true }],
        ['failure', { name: 'svc', durationMs: 250, slow: true }],
      ]);
    });
  });

  describe('open', () => {
    it('fails fast without calling fn, with the time left in the cooldown', async () => {
      const { clock, breaker, rejected } = await tripped();
      const rejections: unknown[] = [];
      breaker.onReject((e) => rejections.push(e));
      clock.t = 250;
      const error = await rejected();
      expect(error).toBeInstanceOf(BrokenCircuitError);
      expect(error).toMatchObject({ name: 'BrokenCircuitError', policy: 'svc', retryAfterMs: 750 });
      expect(breaker.snapshot().openUntil).toBe(750);
      expect(rejections).toEqual([{ name: 'svc', state: 'open' }]);
    });

    it('turns half-open exactly when the cooldown ends', async () => {
      const { clock, breaker, rejected, succeed } = await tripped();
      clock.t = 999;
      expect((await rejected()).retryAfterMs).toBe(1);
      expect(breaker.state).toBe('open');
      clock.t = 1_000;
      expect(breaker.state).toBe('half-open');
      expect(breaker.snapshot().openUntil).toBeUndefined();
      await succeed();
      expect(breaker.state).toBe('closed');
    });

    it('works with the default clock under fake timers', async () => {
      jest.useFakeTimers();
      const breaker = new CircuitBreakerPolicy({ name: 'svc', consecutiveFailures: 1, cooldownMs: 1_000 });
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
      jest.advanceTimersByTime(400);
      await expect(breaker.execute(() => 'x')).rejects.toMatchObject({ retryAfterMs: 600 });
      jest.advanceTimersByTime(600);
      await expect(breaker.execute(() => 'x')).resolves.toBe('x');
      expect(breaker.state).toBe('closed');
    });
  });

  describe('half-open', () => {
    it('runs at most halfOpenProbes probes at once; the next concurrent call is rejected', async () => {
      const { clock, breaker, rejected } = await tripped({ halfOpenProbes: 2, halfOpenSuccesses: 3 });
      const rejections: unknown[] = [];
      breaker.onReject((e) => rejections.push(e));
      clock.t = 1_000;
      const first = deferred<string>();
      const second = deferred<string>();
      const third = deferred<string>();
      const probe1 = breaker.execute(() => first.promise);
      const probe2 = breaker.execute(() => second.promise);
      expect((await rejected()).retryAfterMs).toBe(0);
      expect(rejections).toEqual([{ name: 'svc', state: 'half-open' }]);

      first.resolve('a');
      await expect(probe1).resolves.toBe('a');
      expect(breaker.state).toBe('half-open'); // 1 of 3 successes
      const probe3 = breaker.execute(() => third.promise); // the freed slot
      await rejected();

      second.resolve('b');
      third.resolve('c');
      await expect(Promise.all([probe2, probe3])).resolves.toEqual(['b', 'c']);
      expect(breaker.state).toBe('closed');
    });

    it('defaults to one probe at a time and one success to close', async () => {
      const { clock, breaker, rejected } = await tripped();
      clock.t = 1_000;
      const probe = deferred<string>();
      const running = breaker.execute(() => probe.promise);
      await rejected();
      probe.resolve('ok');
      await running;
      expect(breaker.state).toBe('closed');
    });

    it('needs halfOpenProbes successes to close when halfOpenSuccesses is not set', async () => {
      const { clock, breaker, succeed } = await tripped({ halfOpenProbes: 2 });
      clock.t = 1_000;
      await succeed();
      expect(breaker.state).toBe('half-open');
      await succeed();
      expect(breaker.state).toBe('closed');
    });

    it('closes after halfOpenSuccesses successes and starts from a clean window', async () => {
      const { clock, breaker, succeed } = await tripped({ halfOpenSuccesses: 2, windowMs: 10_000 });
      clock.t = 1_000;
      expect(breaker.snapshot()).toMatchObject({ calls: 1, consecutiveFailures: 1 });
      await succeed();
      expect(breaker.state).toBe('half-open');
      await succeed();
      expect(breaker.snapshot()).toEqual({
        name: 'svc',
        state: 'closed',
        failureRatio: 0,
        calls: 0,
        consecutiveFailures: 0,
      });
    });

    it('re-opens on a probe failure for a fresh cooldown', async () => {
      const { clock, breaker, fail, rejected, succeed } = await tripped({ halfOpenSuccesses: 2 });
      clock.t = 1_500;
      await succeed();
      await fail();
      expect(breaker.snapshot()).toMatchObject({ state: 'open', openUntil: 1_000 });
      clock.t = 2_499;
      expect((await rejected()).retryAfterMs).toBe(1);
      clock.t = 2_500;
      await succeed(); // successes start over: one is not enough
      expect(breaker.state).toBe('half-open');
      await succeed();
      expect(breaker.state).toBe('closed');
    });

    it('re-opens on a slow probe success', async () => {
      const { clock, breaker } = await tripped({ slowCallMs: 50 });
      clock.t = 1_000;
      await breaker.execute(async () => {
        clock.t += 51;
        return 'late';
      });
      expect(breaker.snapshot()).toMatchObject({ state: 'open', openUntil: 1_000 });
    });

    it('drops results of probes admitted before the circuit re-opened', async () => {
      const { clock, breaker } = await tripped({ halfOpenProbes: 2 });
      clock.t = 1_000;
      const a = deferred<string>();
      const b = deferred<string>();
      const probeA = breaker.execute(() => a.promise);
      const probeB = breaker.execute(() => b.promise);
      a.reject(boom);
      await expect(probeA).rejects.toBe(boom);
      expect(breaker.state).toBe('open');
      b.resolve('late');
      await expect(probeB).resolves.toBe('late');
      expect(breaker.snapshot()).toMatchObject({ state: 'open', openUntil: 1_000 });
    });

    it('an ignored probe error frees its slot without counting', async () => {
      const ignored = new Error('cancelled');
      const { clock, breaker, fail, succeed } = await tripped({ isFailure: (e) => e !== ignored });
      clock.t = 1_000;
      await fail(ignored);
      expect(breaker.state).toBe('half-open');
      await succeed(); // the slot is free again
      expect(breaker.state).toBe('closed');
    });
  });

  describe('ignored errors (isFailure false)', () => {
    const ignored = new Error('404');
    const options = { consecutiveFailures: 3, windowMs: 10_000, isFailure: (e: unknown) => e !== ignored };

    it('pass through and count as neither failure nor success', async () => {
      const { breaker, fail } = setup(options);
      await fail();
      await fail();
      await fail(ignored);
      await fail(ignored);
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2, calls: 2, failureRatio: 1 });
      await fail(); // the ignored errors did not reset the streak either
      expect(breaker.state).toBe('open');
    });

    it('fire neither onSuccess nor onFailure', async () => {
      const { breaker, fail } = setup(options);
      const outcomes = jest.fn();
      breaker.onSuccess(outcomes);
      breaker.onFailure(outcomes);
      await fail(ignored);
      expect(outcomes).not.toHaveBeenCalled();
      await fail();
      expect(outcomes).toHaveBeenCalledTimes(1);
    });

    it('cannot trip the circuit on their own', async () => {
      const { breaker, fail } = setup(options);
      for (let i = 0; i < 10; i++) await fail(ignored);
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, calls: 0 });
    });

    it('a throwing predicate counts the error and keeps the original one', async () => {
      const { breaker, fail } = setup({
        consecutiveFailures: 1,
        isFailure: () => {
          throw new Error('predicate bug');
        },
      });
      await fail();
      expect(breaker.state).toBe('open');
    });
  });

  describe('events', () => {
    it('report state changes in order with from, to and at', async () => {
      const { clock, breaker, fail, succeed } = setup({ consecutiveFailures: 2 });
      const changes: CircuitStateChange[] = [];
      breaker.onStateChange((e) => changes.push(e));
      clock.t = 10;
      await fail();
      await fail();
      clock.t = 1_010;
      await fail(); // probe fails
      clock.t = 2_010;
      expect(breaker.state).toBe('half-open'); // observing applies the lazy transition
      clock.t = 2_020;
      await succeed();
      expect(changes).toEqual([
        { name: 'svc', from: 'closed', to: 'open', at: 10, remote: false },
        { name: 'svc', from: 'open', to: 'half-open', at: 1_010, remote: false },
        { name: 'svc', from: 'half-open', to: 'open', at: 1_010, remote: false },
        { name: 'svc', from: 'open', to: 'half-open', at: 2_010, remote: false },
        { name: 'svc', from: 'half-open', to: 'closed', at: 2_020, remote: false },
      ]);
    });

    it('stop after dispose', async () => {
      const { breaker, fail } = setup({ consecutiveFailures: 1 });
      const listener = jest.fn();
      breaker.onStateChange(listener).dispose();
      await fail();
      expect(listener).not.toHaveBeenCalled();
    });

    it('without listeners or slowCallMs, closed calls never read the clock', async () => {
      const now = jest.spyOn(performance, 'now');
      const breaker = new CircuitBreakerPolicy({ name: 'svc', consecutiveFailures: 5, cooldownMs: 1_000 });
      await breaker.execute(() => 'ok');
      await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
      expect(now).not.toHaveBeenCalled();

      const subscription = breaker.onSuccess(() => undefined);
      await breaker.execute(() => 'ok');
      expect(now).toHaveBeenCalledTimes(2); // start and end

      subscription.dispose();
      now.mockClear();
      await breaker.execute(() => 'ok');
      expect(now).not.toHaveBeenCalled();
    });

    it('slowCallMs alone is enough to take durations', async () => {
      const now = jest.spyOn(performance, 'now');
      const breaker = new CircuitBreakerPolicy({ name: 'svc', slowCallMs: 100, cooldownMs: 1_000 });
      await breaker.execute(() => 'ok');
      expect(now).toHaveBeenCalledTimes(2);
    });
  });

  describe('caller signal', () => {
    it('is passed to fn unchanged; without one fn gets a never-aborted signal', async () => {
      const { breaker } = setup();
      const controller = new AbortController();
      const seen: AbortSignal[] = [];
      await breaker.execute(({ signal }) => seen.push(signal), controller.signal);
      await breaker.execute(({ signal }) => seen.push(signal));
      expect(seen[0]).toBe(controller.signal);
      expect(seen[1]).toBe(NEVER_ABORTED);
    });

    it('already aborted: fn is not called, the reason is rethrown and nothing is counted', async () => {
      const { breaker } = setup({ consecutiveFailures: 1, windowMs: 10_000 });
      const reason = new Error('client went away');
      const controller = new AbortController();
      controller.abort(reason);
      const fn = jest.fn(() => 'never');
      await expect(breaker.execute(fn, controller.signal)).rejects.toBe(reason);
      expect(fn).not.toHaveBeenCalled();
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', calls: 0, consecutiveFailures: 0 });
    });

    it('already aborted while open: the reason wins over BrokenCircuitError, no rejection event', async () => {
      const { breaker } = await tripped();
      const rejections = jest.fn();
      breaker.onReject(rejections);
      const controller = new AbortController();
      controller.abort('gone');
      await expect(breaker.execute(() => 'x', controller.signal)).rejects.toBe('gone');
      expect(rejections).not.toHaveBeenCalled();
    });
  });

  describe('applyRemote (a breaker shared between instances)', () => {
    it('opens a closed circuit for one cooldown, then its own probes decide', async () => {
      const { clock, breaker, succeed, rejected } = setup({ consecutiveFailures: 5 });
      const changes: CircuitStateChange[] = [];
      breaker.onStateChange((e) => changes.push(e));
      clock.t = 100;
      expect(breaker.applyRemote('open')).toBe(true);
      await rejected();
      clock.t = 1_099;
      await rejected();
      clock.t = 1_100;
      expect(breaker.state).toBe('half-open');
      await succeed(); // the local probe closes it
      expect(breaker.state).toBe('closed');
      expect(changes.map((c) => `${c.from}->${c.to}:${String(c.remote)}`)).toEqual([
        'closed->open:true',
        'open->half-open:false',
        'half-open->closed:false',
      ]);
    });

    it('ignores open while open or half-open: one instance cannot hold the others open', async () => {
      const { clock, breaker, fail } = await tripped({ cooldownMs: 1_000 });
      expect(breaker.applyRemote('open')).toBe(false);
      expect(breaker.snapshot().openUntil).toBe(1_000); // the cooldown was not extended
      clock.t = 1_000;
      expect(breaker.state).toBe('half-open');
      expect(breaker.applyRemote('open')).toBe(false);
      expect(breaker.state).toBe('half-open');
      await fail(); // its own failed probe still reopens it
      expect(breaker.state).toBe('open');
    });

    it('closes an open or half-open circuit and forgets its counts; ignores closed when closed', async () => {
      const { clock, breaker, succeed } = await tripped();
      expect(breaker.applyRemote('closed')).toBe(true);
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
      await succeed();
      expect(breaker.applyRemote('closed')).toBe(false);

      const again = await tripped();
      again.clock.t = 1_000;
      expect(again.breaker.state).toBe('half-open');
      expect(again.breaker.applyRemote('closed')).toBe(true);
      expect(again.breaker.state).toBe('closed');
      expect(clock.t).toBe(0);
    });

    it('drops the result of a probe admitted before a remote close', async () => {
      const { clock, breaker } = await tripped({ halfOpenProbes: 1 });
      clock.t = 1_000;
      const probe = deferred<string>();
      const running = breaker.execute(() => probe.promise);
      breaker.applyRemote('closed');
      probe.reject(boom);
      await expect(running).rejects.toBe(boom);
      expect(breaker.state).toBe('closed'); // the stale failure did not reopen it
    });
  });

  describe('reset and composition', () => {
    it('reset closes, clears the counts and drops results of calls still in flight', async () => {
      const { breaker, fail } = setup({ consecutiveFailures: 2, windowMs: 10_000 });
      const changes: CircuitStateChange[] = [];
      breaker.onStateChange((e) => changes.push(e));
      await fail();
      const inFlight = deferred<string>();
      const running = breaker.execute(() => inFlight.promise);
      breaker.reset();
      inFlight.reject(boom);
      await expect(running).rejects.toBe(boom);
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', calls: 0, consecutiveFailures: 0 });
      expect(changes).toEqual([]); // closed -> closed is no transition

      await fail();
      await fail();
      breaker.reset();
      expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['closed->open', 'open->closed']);
    });

    it('composes with wrap', async () => {
      const { breaker, rejected } = await tripped();
      const outer = wrap(breaker);
      await expect(outer.execute(() => 'x')).rejects.toMatchObject({ name: 'BrokenCircuitError' });
      await rejected();
    });
  });

  describe('options', () => {
    it.each<[string, Partial<CircuitBreakerOptions>]>([
      ['consecutiveFailures', { consecutiveFailures: 1.5 }],
      ['failureRatio', { failureRatio: 1.1 }],
      ['minimumCalls', { minimumCalls: 0 }],
      ['windowMs', { windowMs: 0 }],
      ['slowCallMs', { slowCallMs: -1 }],
      ['cooldownMs', { cooldownMs: Number.NaN }],
      ['halfOpenProbes', { halfOpenProbes: 0 }],
      ['halfOpenSuccesses', { halfOpenSuccesses: 0 }],
    ])('rejects a bad %s', (field, bad) => {
      expect(() => new CircuitBreakerPolicy({ name: 'svc', cooldownMs: 1_000, ...bad })).toThrow(
        new RangeError(`CircuitBreakerPolicy: ${field} must ${messages[field] ?? ''}`),
      );
    });
  });
});

const messages: Record<string, string> = {
  consecutiveFailures: 'be an integer >= 0',
  failureRatio: 'be within 0..1',
  minimumCalls: 'be an integer >= 1',
  windowMs: 'be > 0',
  slowCallMs: 'be >= 0',
  cooldownMs: 'be >= 0',
  halfOpenProbes: 'be an integer >= 1',
  halfOpenSuccesses: 'be an integer >= 1',
};
