import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  BulkheadPolicy,
  type BulkheadPolicyOptions,
  type BulkheadQueuedEvent,
  type BulkheadRejectEvent,
} from './bulkhead.policy.js';
import { BulkheadRejectedError, isBulkheadRejectedError } from './resilience.errors.js';

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

/** Lets promise continuations run without moving the fake clock. */
const flush = (): Promise<void> => jest.advanceTimersByTimeAsync(0);

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

/**
 * Tasks the test finishes by hand, recording start order and the highest
 * number running at once.
 */
class Harness {
  readonly started: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly finishers = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();

  task(id: number): () => Promise<number> {
    return () => {
      this.started.push(id);
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      return new Promise<number>((resolve, reject) => {
        this.finishers.set(id, { resolve, reject });
      }).finally(() => {
        this.inFlight--;
      });
    };
  }

  succeed(id: number): void {
    this.finishers.get(id)!.resolve(id);
  }

  fail(id: number, error: Error): void {
    this.finishers.get(id)!.reject(error);
  }
}

const options = (overrides: Partial<BulkheadPolicyOptions> = {}): BulkheadPolicyOptions => ({
  name: 'reports',
  maxConcurrent: 1,
  maxQueue: 1,
  queueTimeoutMs: 1_000,
  ...overrides,
});

describe('BulkheadPolicy', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('runs at most maxConcurrent, queues exactly maxQueue and rejects the rest at once as full', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 3, maxQueue: 10, queueTimeoutMs: 10_000 }));
    const rejects: BulkheadRejectEvent[] = [];
    bulkhead.onReject((event) => rejects.push(event));
    const harness = new Harness();

    const calls = Array.from({ length: 50 }, (_, id) => track(bulkhead.execute(harness.task(id))));
    await flush();

    expect(harness.started).toEqual([0, 1, 2]);
    expect(bulkhead.snapshot()).toEqual({ name: 'reports', active: 3, queued: 10, maxConcurrent: 3, maxQueue: 10 });
    const rejected = calls.slice(13);
    expect(rejected.every((call) => isBulkheadRejectedError(call.error) && call.error.reason === 'full')).toBe(true);
    expect(calls.slice(0, 13).some((call) => call.settled)).toBe(false);
    expect(rejects).toHaveLength(37);
    expect(rejects[0]).toEqual({ name: 'reports', reason: 'full' });

    // Finish the running ones one by one (oldest first): queued calls start in FIFO order.
    for (let id = 0; id < 13; id++) {
      harness.succeed(id);
      await flush();
      expect(calls[id]!.value).toBe(id);
    }

    expect(harness.started).toEqual(Array.from({ length: 13 }, (_, id) => id));
    expect(harness.maxInFlight).toBe(3);
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('never exceeds maxConcurrent when tasks finish in a scrambled order', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 3, maxQueue: 20, queueTimeoutMs: 10_000 }));
    const harness = new Harness();
    const calls = Array.from({ length: 20 }, (_, id) => track(bulkhead.execute(harness.task(id))));
    await flush();

    // Finish whatever is running, newest first, until all are done.
    while (harness.started.length > 0 && calls.some((call) => !call.settled)) {
      const running = harness.started.filter((id) => !calls[id]!.settled);
      for (const id of running.reverse()) harness.succeed(id);
      await flush();
      expect(bulkhead.snapshot().active).toBeLessThanOrEqual(3);
    }

    expect(calls.every((call, id) => call.value === id)).toBe(true);
    expect(harness.started.slice(3)).toEqual(Array.from({ length: 17 }, (_, i) => i + 3)); // FIFO
    expect(harness.maxInFlight).toBe(3);
  });

  it('hands a freed slot to the oldest waiter, so a newcomer cannot jump the queue', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 1 }));
    const harness = new Harness();
    const first = track(bulkhead.execute(harness.task(1)));
    const second = track(bulkhead.execute(harness.task(2)));
    await flush();
    expect(bulkhead.snapshot()).toMatchObject({ active: 1, queued: 1 });

    harness.succeed(1);
    // Step microtask by microtask until the waiter has left the queue, then arrive as a newcomer.
    while (bulkhead.snapshot().queued > 0) await Promise.resolve();
    expect(bulkhead.snapshot().active).toBe(1);
    const newcomer = track(bulkhead.execute(harness.task(3)));
    await flush();

    expect(first.value).toBe(1);
    expect(harness.started).toEqual([1, 2]);
    expect(bulkhead.snapshot()).toMatchObject({ active: 1, queued: 1 });
    harness.succeed(2);
    await flush();
    expect(second.value).toBe(2);
    expect(harness.started).toEqual([1, 2, 3]);
    harness.succeed(3);
    await flush();
    expect(newcomer.value).toBe(3);
    expect(harness.maxInFlight).toBe(1);
  });

  it('rejects waiters still queued exactly at queueTimeoutMs, with a retry hint', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 100 }));
    const rejects: BulkheadRejectEvent[] = [];
    bulkhead.onReject((event) => rejects.push(event));
    const harness = new Harness();
    const running = track(bulkhead.execute(harness.task(0)));
    const early = track(bulkhead.execute(harness.task(1)));
    await jest.advanceTimersByTimeAsync(40);
    const late = track(bulkhead.execute(harness.task(2)));

    await jest.advanceTimersByTimeAsync(59); // t = 99
    expect(early.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1); // t = 100
    expect(early.error).toBeInstanceOf(BulkheadRejectedError);
    expect(early.error).toMatchObject({ policy: 'reports', reason: 'queue_timeout' });
    // The next waiter leaves the queue by t = 140 at the latest: a place frees within 40 ms.
    expect((early.error as BulkheadRejectedError).retryAfterMs).toBe(40);
    expect(bulkhead.snapshot()).toMatchObject({ active: 1, queued: 1 });

    await jest.advanceTimersByTimeAsync(39); // t = 139
    expect(late.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1); // t = 140
    expect(late.error).toMatchObject({ reason: 'queue_timeout' });
    expect(rejects).toEqual([
      { name: 'reports', reason: 'queue_timeout' },
      { name: 'reports', reason: 'queue_timeout' },
    ]);

    expect(harness.started).toEqual([0]);
    expect(jest.getTimerCount()).toBe(0);
    harness.succeed(0);
    await flush();
    expect(running.value).toBe(0);
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });
  });

  it('does not time out a waiter that got its slot in time, and clears its timer', async () => {
    const bulkhead = new BulkheadPolicy(options({ queueTimeoutMs: 100 }));
    const harness = new Harness();
    track(bulkhead.execute(harness.task(0)));
    const waiter = track(bulkhead.execute(harness.task(1)));
    expect(jest.getTimerCount()).toBe(1);

    await jest.advanceTimersByTimeAsync(99);
    harness.succeed(0);
    await flush();
    expect(harness.started).toEqual([0, 1]);
    expect(jest.getTimerCount()).toBe(0);

    await jest.advanceTimersByTimeAsync(500);
    expect(waiter.settled).toBe(false);
    harness.succeed(1);
    await flush();
    expect(waiter.value).toBe(1);
  });

  it("removes an aborted waiter at once with the caller's reason, freeing its place", async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 1 }));
    const rejects: BulkheadRejectEvent[] = [];
    bulkhead.onReject((event) => rejects.push(event));
    const harness = new Harness();
    track(bulkhead.execute(harness.task(0)));
    const caller = new AbortController();
    const abandoned = track(bulkhead.execute(harness.task(1), caller.signal));
    await flush();
    const full = track(bulkhead.execute(harness.task(2)));
    await flush();
    expect(full.error).toMatchObject({ reason: 'full' });

    const reason = new Error('client went away');
    caller.abort(reason);
    await flush();

    expect(abandoned.error).toBe(reason);
    expect(bulkhead.snapshot()).toMatchObject({ active: 1, queued: 0 });
    expect(abortListeners(caller.signal)).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    expect(rejects).toEqual([{ name: 'reports', reason: 'full' }]); // a cancellation is not a rejection

    const later = track(bulkhead.execute(harness.task(3)));
    await flush();
    expect(later.settled).toBe(false);
    expect(bulkhead.snapshot()).toMatchObject({ active: 1, queued: 1 });
    harness.succeed(0);
    await flush();
    expect(harness.started).toEqual([0, 3]);
  });

  it('rejects with the reason of an already-aborted signal without taking a slot', async () => {
    const bulkhead = new BulkheadPolicy(options());
    const caller = new AbortController();
    const reason = new Error('cancelled before start');
    caller.abort(reason);
    const fn = jest.fn(() => 'ran');

    await expect(bulkhead.execute(fn, caller.signal)).rejects.toBe(reason);

    expect(fn).not.toHaveBeenCalled();
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });
  });

  it('passes the caller signal to fn unchanged', async () => {
    const bulkhead = new BulkheadPolicy(options());
    const caller = new AbortController();
    let seen: AbortSignal | undefined;

    await bulkhead.execute(({ signal }) => {
      seen = signal;
    }, caller.signal);

    expect(seen).toBe(caller.signal);
  });

  it('releases the slot when a running task fails, to a waiter or back to the pool', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 1 }));
    const harness = new Harness();
    const failing = track(bulkhead.execute(harness.task(0)));
    const waiter = track(bulkhead.execute(harness.task(1)));
    await flush();

    const boom = new Error('boom');
    harness.fail(0, boom);
    await flush();
    expect(failing.error).toBe(boom);
    expect(harness.started).toEqual([0, 1]);

    harness.fail(1, new Error('again'));
    await flush();
    expect(waiter.error).toMatchObject({ message: 'again' });
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });

    const thrown = new Error('sync throw');
    await expect(
      bulkhead.execute(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });
    await expect(bulkhead.execute(() => 'fine')).resolves.toBe('fine');
  });

  it('does not start a granted waiter whose signal aborted before it resumed', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 2 }));
    const harness = new Harness();
    track(bulkhead.execute(harness.task(0)));
    const caller = new AbortController();
    const reason = new Error('gave up just in time');
    const granted = track(bulkhead.execute(harness.task(1), caller.signal));
    const next = track(bulkhead.execute(harness.task(2)));
    await flush();

    harness.succeed(0);
    // Abort as soon as the slot is handed over, before the waiter's continuation runs.
    while (bulkhead.snapshot().queued === 2) await Promise.resolve();
    caller.abort(reason);
    await flush();

    expect(granted.error).toBe(reason);
    expect(harness.started).toEqual([0, 2]);
    harness.succeed(2);
    await flush();
    expect(next.value).toBe(2);
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });
  });

  it('keeps one listener on a shared caller signal however many wait, and none after', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 30 }));
    const harness = new Harness();
    const shared = new AbortController();
    const calls = Array.from({ length: 31 }, (_, id) => track(bulkhead.execute(harness.task(id), shared.signal)));
    await flush();
    expect(abortListeners(shared.signal)).toBe(1);

    for (let id = 0; id < 31; id++) {
      harness.succeed(id);
      await flush();
    }

    expect(calls.every((call, id) => call.value === id)).toBe(true);
    expect(abortListeners(shared.signal)).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  describe('retryAfterMs of a full rejection', () => {
    it('is the time until the oldest waiter must leave the queue', async () => {
      const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 500 }));
      const harness = new Harness();
      track(bulkhead.execute(harness.task(0)));
      track(bulkhead.execute(harness.task(1)));
      await jest.advanceTimersByTimeAsync(120);

      const full = track(bulkhead.execute(harness.task(2)));
      await flush();

      expect((full.error as BulkheadRejectedError).retryAfterMs).toBe(380);
    });

    it('without a queue, is 1 s before any call finished, then the average run time', async () => {
      const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 0 }));
      const harness = new Harness();
      const firstRun = track(bulkhead.execute(harness.task(0)));
      const before = track(bulkhead.execute(harness.task(1)));
      await flush();
      expect(before.error).toMatchObject({ reason: 'full', retryAfterMs: 1_000 });

      await jest.advanceTimersByTimeAsync(200);
      harness.succeed(0);
      await flush();
      expect(firstRun.value).toBe(0);
      track(bulkhead.execute(harness.task(2)));
      const after = track(bulkhead.execute(harness.task(3)));
      await flush();

      expect(after.error).toMatchObject({ reason: 'full', retryAfterMs: 200 });
    });
  });

  it('emits onQueued with the queue length, and nothing once disposed', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 3 }));
    const queued: BulkheadQueuedEvent[] = [];
    const subscription = bulkhead.onQueued((event) => queued.push(event));
    const harness = new Harness();
    track(bulkhead.execute(harness.task(0)));
    track(bulkhead.execute(harness.task(1)));
    track(bulkhead.execute(harness.task(2)));
    subscription.dispose();
    track(bulkhead.execute(harness.task(3)));

    expect(queued).toEqual([
      { name: 'reports', queued: 1 },
      { name: 'reports', queued: 2 },
    ]);
    await flush();
  });

  it('keeps its state consistent when event listeners throw', async () => {
    const bulkhead = new BulkheadPolicy(options({ maxConcurrent: 1, maxQueue: 1 }));
    const harness = new Harness();
    bulkhead.onQueued(() => {
      throw new Error('bad listener');
    });
    bulkhead.onReject(() => {
      throw new Error('bad listener');
    });
    const first = track(bulkhead.execute(harness.task(0)));
    const queued = track(bulkhead.execute(harness.task(1)));
    const full = track(bulkhead.execute(harness.task(2)));
    await flush();
    expect(full.error).toMatchObject({ reason: 'full' });
    expect(bulkhead.snapshot()).toMatchObject({ active: 1, queued: 1 });

    harness.succeed(0);
    await flush();
    harness.succeed(1);
    await flush();

    expect([first.value, queued.value]).toEqual([0, 1]);
    expect(bulkhead.snapshot()).toMatchObject({ active: 0, queued: 0 });
  });

  it('waits without a timer when queueTimeoutMs is Infinity', async () => {
    const bulkhead = new BulkheadPolicy(options({ queueTimeoutMs: Infinity }));
    const harness = new Harness();
    track(bulkhead.execute(harness.task(0)));
    const waiter = track(bulkhead.execute(harness.task(1)));
    expect(jest.getTimerCount()).toBe(0);

    await jest.advanceTimersByTimeAsync(1_000_000);
    expect(waiter.settled).toBe(false);
    const full = track(bulkhead.execute(harness.task(2)));
    await flush();
    expect(full.error).toMatchObject({ reason: 'full', retryAfterMs: 1_000 });
  });

  it.each<[string, Partial<BulkheadPolicyOptions>]>([
    ['maxConcurrent 0', { maxConcurrent: 0 }],
    ['maxConcurrent 1.5', { maxConcurrent: 1.5 }],
    ['maxQueue -1', { maxQueue: -1 }],
    ['maxQueue NaN', { maxQueue: Number.NaN }],
    ['queueTimeoutMs -1', { queueTimeoutMs: -1 }],
    ['queueTimeoutMs NaN', { queueTimeoutMs: Number.NaN }],
    ['queueTimeoutMs 2^31', { queueTimeoutMs: 2 ** 31 }],
  ])('rejects %s', (_label, overrides) => {
    expect(() => new BulkheadPolicy(options(overrides))).toThrow(RangeError);
  });
});
