import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  AdaptiveConcurrencyPolicy,
  type AdaptiveConcurrencyOptions,
  type AdaptiveConcurrencyRejectEvent,
  type AdaptiveLimitChangeEvent,
} from './adaptive-concurrency.policy.js';
import type { Clock } from './clock.js';
import { EventEmitter } from './event.js';
import { CancelledError, ConcurrencyLimitError, isConcurrencyLimitError, TimeoutError } from './resilience.errors.js';

/** A clock the tests move by hand: exact, and no sleeping. */
class ManualClock implements Clock {
  t = 1_000;
  now(): number {
    return this.t;
  }
}

/** A promise the test resolves by hand. */
const gate = <T>() => {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
};

/** Settles the policy's continuations (no timers are involved). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

const setup = (overrides: Partial<AdaptiveConcurrencyOptions> = {}) => {
  const clock = new ManualClock();
  const policy = new AdaptiveConcurrencyPolicy({
    name: 'posts',
    initialLimit: 3,
    minLimit: 2,
    maxLimit: 50,
    smoothing: 1,
    tolerance: 1.5,
    windowMs: 100,
    minSamples: 1,
    probeIntervalMs: 60_000,
    clock,
    ...overrides,
  });
  const sample = jest.spyOn(policy.controller, 'sample');
  /** Runs one call through the policy that takes `ms` on the clock and then settles with `outcome`. */
  const call = async (ms: number, outcome: { value: string } | { error: Error }): Promise<unknown> =>
    policy.execute(() => {
      clock.t += ms;
      return 'value' in outcome ? outcome.value : Promise.reject(outcome.error);
    });
  return { clock, policy, sample, call };
};

describe('AdaptiveConcurrencyPolicy', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('rejects at once beyond the limit, without queueing or calling fn', async () => {
    const { policy } = setup();
    const rejects: AdaptiveConcurrencyRejectEvent[] = [];
    policy.onReject((event) => rejects.push(event));
    const running = [gate<string>(), gate<string>()];
    const calls = running.map((d) => policy.execute(() => d.promise));
    expect(policy.snapshot()).toMatchObject({ limit: 2, inFlight: 2, phase: 'probing' });

    const fn = jest.fn(() => 'ran');
    const rejected = policy.execute(fn);

    await expect(rejected).rejects.toBeInstanceOf(ConcurrencyLimitError);
    const error: unknown = await rejected.catch((e: unknown) => e);
    expect(isConcurrencyLimitError(error)).toBe(true);
    expect(error).toMatchObject({ policy: 'posts', limit: 2, retryAfterMs: 1_000 });
    expect(fn).not.toHaveBeenCalled();
    expect(rejects).toEqual([{ name: 'posts', limit: 2 }]);

    // A freed slot does not run the rejected call later: there is no queue.
    running[0]!.open('a');
    await flush();
    expect(fn).not.toHaveBeenCalled();
    expect(policy.snapshot().inFlight).toBe(1);
    running[1]!.open('b');
    await expect(Promise.all(calls)).resolves.toEqual(['a', 'b']);
    expect(policy.snapshot().inFlight).toBe(0);
  });

  it('admits up to the limit the controller raised after its probe, and hints the no-load latency', async () => {
    const { policy, call } = setup();
    await call(12.25, { value: 'probe' }); // minSamples 1: the probe ends, no-load 12.25 ms
    expect(policy.snapshot()).toMatchObject({ limit: 3, phase: 'tracking', noLoadMs: 12.25 });

    const running = [gate<undefined>(), gate<undefined>(), gate<undefined>()];
    const calls = running.map((d) => policy.execute(() => d.promise));
    const error: unknown = await policy.execute(() => 'ran').catch((e: unknown) => e);

    expect(error).toMatchObject({ limit: 3, retryAfterMs: 12 });
    for (const d of running) d.open(undefined);
    await Promise.all(calls);
    expect(policy.snapshot().inFlight).toBe(0);
  });

  it('samples successes and TimeoutErrors with start, duration and in-flight count, nothing else', async () => {
    const { clock, policy, sample, call } = setup({ initialLimit: 10 });
    await call(20, { value: 'ok' });
    expect(sample).toHaveBeenLastCalledWith(1_000, 20, 1);

    const timeout = new TimeoutError('posts', 50, 'attempt');
    await expect(call(50, { error: timeout })).rejects.toBe(timeout);
    expect(sample).toHaveBeenLastCalledWith(1_020, 50, 1);
    const deadline = new TimeoutError('posts', 80, 'deadline');
    await expect(call(30, { error: deadline })).rejects.toBe(deadline);
    expect(sample).toHaveBeenCalledTimes(3);

    // Fast failures and cancellations say nothing about the upstream's latency.
    const failures = [
      new Error('boom'),
      new CancelledError('posts', 'gone'),
      Object.assign(new Error('x'), { status: 503 }),
    ];
    for (const failure of failures) await expect(call(5, { error: failure })).rejects.toBe(failure);
    const thrown = new Error('sync throw');
    await expect(
      policy.execute(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(sample).toHaveBeenCalledTimes(3);

    // The in-flight count at start includes the call itself and those already running.
    const first = gate<string>();
    const second = gate<string>();
    const started = clock.t;
    const both = Promise.all([policy.execute(() => first.promise), policy.execute(() => second.promise)]);
    clock.t += 7;
    first.open('1');
    second.open('2');
    await both;
    expect(sample.mock.calls.slice(3)).toEqual([
      [started, 7, 1],
      [started, 7, 2],
    ]);
    expect(policy.snapshot().inFlight).toBe(0);
  });

  it('frees the slot when fn throws or rejects', async () => {
    const { policy, call } = setup();
    await expect(call(1, { error: new Error('a') })).rejects.toThrow('a');
    await expect(
      policy.execute(() => {
        throw new Error('b');
      }),
    ).rejects.toThrow('b');
    expect(policy.snapshot().inFlight).toBe(0);

    // Both slots of the probing limit are usable again.
    const running = [gate<string>(), gate<string>()];
    const calls = running.map((d) => policy.execute(() => d.promise));
    expect(policy.snapshot().inFlight).toBe(2);
    for (const d of running) d.open('ok');
    await expect(Promise.all(calls)).resolves.toEqual(['ok', 'ok']);
  });

  it('passes the caller signal to fn unchanged', async () => {
    const { policy } = setup();
    const caller = new AbortController();
    let seen: AbortSignal | undefined;
    await policy.execute(({ signal }) => {
      seen = signal;
    }, caller.signal);
    expect(seen).toBe(caller.signal);
  });

  it('rejects with the reason of an already-aborted signal, without a slot, sample or reject event', async () => {
    const { policy, sample } = setup();
    const rejects: AdaptiveConcurrencyRejectEvent[] = [];
    policy.onReject((event) => rejects.push(event));
    const caller = new AbortController();
    const reason = new Error('cancelled before start');
    caller.abort(reason);
    const fn = jest.fn(() => 'ran');

    await expect(policy.execute(fn, caller.signal)).rejects.toBe(reason);

    expect(fn).not.toHaveBeenCalled();
    expect(sample).not.toHaveBeenCalled();
    expect(rejects).toEqual([]);
    expect(policy.snapshot().inFlight).toBe(0);
  });

  it('reports name, limit, load, bounds, phase and latencies', async () => {
    const { policy, clock, call } = setup();
    expect(policy.snapshot()).toEqual({
      name: 'posts',
      limit: 2,
      inFlight: 0,
      noLoadMs: undefined,
      minLimit: 2,
      maxLimit: 50,
      phase: 'probing',
      lastRttMs: undefined,
    });
    await call(10, { value: 'probe' });
    clock.t += 100;
    await call(10, { value: 'window' }); // one call of three: app-limited
    expect(policy.snapshot()).toEqual({
      name: 'posts',
      limit: 3,
      inFlight: 0,
      noLoadMs: 10,
      minLimit: 2,
      maxLimit: 50,
      phase: 'tracking',
      lastRttMs: 10,
    });
  });

  it('re-exposes limit changes with its name, and builds no event without listeners', async () => {
    const { policy, clock, call } = setup();
    const emit = jest.spyOn(EventEmitter.prototype, 'emit');
    const running = [gate<undefined>(), gate<undefined>()];
    const calls = running.map((d) => policy.execute(() => d.promise));
    await expect(policy.execute(() => 'ran')).rejects.toBeInstanceOf(ConcurrencyLimitError);
    clock.t += 10;
    for (const d of running) d.open(undefined);
    await Promise.all(calls); // the first ends the probe: no-load 10 ms, 2 -> 3
    expect(policy.controller.limit).toBe(3);
    expect(emit).not.toHaveBeenCalled();

    const changes: AdaptiveLimitChangeEvent[] = [];
    const subscription = policy.onLimitChange((change) => changes.push(change));
    clock.t += 60_000;
    await call(10, { value: 'due' }); // the probe is due: pinned to minLimit
    expect(changes).toEqual([{ name: 'posts', from: 3, to: 2, noLoadMs: 10, rttMs: undefined }]);

    subscription.dispose();
    await call(10, { value: 'probe' });
    expect(policy.snapshot()).toMatchObject({ phase: 'tracking', limit: 3 });
    expect(changes).toHaveLength(1);
    expect(emit).toHaveBeenCalledTimes(1);
  });
});
