import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { isCancelledError } from '../resilience/resilience.errors.js';
import { LeaseKeeper, type LeaseKeeperOptions } from './lease-keeper.js';
import type { ClaimedNotification } from './notification.js';

const LEASE_MS = 3000;

const job = (id: string, attempts = 1): ClaimedNotification => ({
  id,
  channel: 'email',
  recipient: `${id}@example.org`,
  subject: 'Subject',
  body: 'Body',
  requestedBy: 'sender',
  status: 'sending',
  attempts,
  lastError: null,
  createdAt: new Date(0),
  deliveredAt: null,
  lockedBy: 'worker-a',
});

interface Call {
  readonly at: number;
  readonly ids: string[];
  resolve(still: Iterable<string>): void;
  reject(error: Error): void;
}

/** A keeper whose renewals wait until the test answers them (`answer` answers the next one the same way). */
function keeper(overrides: Partial<LeaseKeeperOptions> = {}) {
  const calls: Call[] = [];
  const givenUp: { id: string; reason: string; at: number }[] = [];
  const renewed: number[] = [];
  const failed: number[] = [];
  let auto: ((ids: string[]) => Iterable<string> | Error) | undefined;
  const leases = new LeaseKeeper({
    leaseMs: LEASE_MS,
    renew: (claims) =>
      new Promise<ReadonlySet<string>>((resolve, reject) => {
        const ids = claims.map((c) => c.id);
        const call: Call = {
          at: Date.now(),
          ids,
          resolve: (still) => {
            resolve(new Set(still));
          },
          reject,
        };
        calls.push(call);
        const answer = auto?.(ids);
        if (answer instanceof Error) call.reject(answer);
        else if (answer !== undefined) call.resolve(answer);
      }),
    onGiveUp: (j, reason) => givenUp.push({ id: j.id, reason, at: Date.now() }),
    onRenewed: (count) => renewed.push(count),
    onRenewFailed: (_error, streak) => failed.push(streak),
    ...overrides,
  });
  return {
    leases,
    calls,
    givenUp,
    renewed,
    failed,
    /** Answers every renewal from now on: the ids still held, or an error. */
    answer(fn: (ids: string[]) => Iterable<string> | Error) {
      auto = fn;
    },
  };
}

const reasonOf = (signal: AbortSignal): unknown => {
  expect(isCancelledError(signal.reason)).toBe(true);
  return (signal.reason as { reason: unknown }).reason;
};

describe('LeaseKeeper', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('derives its rhythm from the lease: renew every third, retry after a sixth, give up a sixth early', () => {
    const { leases } = keeper();
    expect(leases.renewEveryMs).toBe(1000);
    expect(leases.retryAfterFailureMs).toBe(500);
    expect(leases.marginMs).toBe(500);
  });

  it('renews every claim held in one call every leaseMs / 3, for as long as the sends last', async () => {
    const k = keeper();
    k.answer((ids) => ids);
    const start = Date.now();
    const a = k.leases.hold(job('a'), k.leases.now());
    await jest.advanceTimersByTimeAsync(400);
    const b = k.leases.hold(job('b'), k.leases.now());

    await jest.advanceTimersByTimeAsync(10 * LEASE_MS - 400);

    expect(k.calls.map((c) => c.at - start)).toEqual(Array.from({ length: 30 }, (_, i) => (i + 1) * 1000));
    expect(k.calls[0]!.ids).toEqual(['a', 'b']);
    expect(k.calls.every((c) => c.ids.length === 2)).toBe(true);
    expect(k.renewed).toEqual(Array.from({ length: 30 }, () => 2));
    expect(a.aborted || b.aborted).toBe(false);
    expect(k.givenUp).toEqual([]);
  });

  it('stops renewing a finished send, and leaves no timer once nothing is held', async () => {
    const k = keeper();
    k.answer((ids) => ids);
    const a = k.leases.hold(job('a'), k.leases.now());
    k.leases.hold(job('b'), k.leases.now());
    await jest.advanceTimersByTimeAsync(1000);
    k.leases.finish('b');
    await jest.advanceTimersByTimeAsync(1000);
    expect(k.calls.map((c) => c.ids)).toEqual([['a', 'b'], ['a']]);

    k.leases.finish('a');
    expect(k.leases.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(5 * LEASE_MS);
    expect(k.calls).toHaveLength(2);
    expect(a.aborted).toBe(false);
  });

  it('aborts at once the send of a claim the renewal no longer finds, and keeps the others', async () => {
    const k = keeper();
    const a = k.leases.hold(job('a'), k.leases.now());
    const b = k.leases.hold(job('b'), k.leases.now());
    await jest.advanceTimersByTimeAsync(1000);
    k.calls[0]!.resolve(['b']);
    await jest.advanceTimersByTimeAsync(0);

    expect(a.aborted).toBe(true);
    expect(reasonOf(a)).toBe('lost');
    expect(b.aborted).toBe(false);
    expect(k.givenUp).toEqual([{ id: 'a', reason: 'lost', at: Date.now() }]);
    expect(k.renewed).toEqual([1]);

    k.answer((ids) => ids);
    await jest.advanceTimersByTimeAsync(1000);
    expect(k.calls[1]!.ids).toEqual(['b']);
    expect(k.givenUp).toHaveLength(1);
  });

  it('retries a failed renewal after leaseMs / 6 and gives the send up a margin before the lease would lapse', async () => {
    const k = keeper();
    k.answer(() => new Error('database unavailable'));
    const claimedAt = k.leases.now();
    const start = Date.now();
    const a = k.leases.hold(job('a'), claimedAt);

    // Deadline: claim start + lease − margin = 2500 ms.
    await jest.advanceTimersByTimeAsync(2499);
    expect(a.aborted).toBe(false);
    expect(k.calls.map((c) => c.at - start)).toEqual([1000, 1500, 2000]);
    expect(k.failed).toEqual([1, 2, 3]);

    await jest.advanceTimersByTimeAsync(1);
    expect(a.aborted).toBe(true);
    expect(reasonOf(a)).toBe('lapsing');
    expect(k.givenUp).toEqual([{ id: 'a', reason: 'lapsing', at: start + 2500 }]);

    // Given up once, and nothing is left to renew.
    await jest.advanceTimersByTimeAsync(5 * LEASE_MS);
    expect(k.givenUp).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('counts the lease from the start of the claim, not from when the send began', async () => {
    const k = keeper();
    k.answer(() => new Error('database unavailable'));
    const claimedAt = k.leases.now();
    // The claim statement took 2 s to come back.
    await jest.advanceTimersByTimeAsync(2000);
    const a = k.leases.hold(job('a'), claimedAt);
    await jest.advanceTimersByTimeAsync(499);
    expect(a.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(reasonOf(a)).toBe('lapsing');
  });

  it('moves the deadline to the start of the last successful renewal plus the lease', async () => {
    const k = keeper();
    const start = Date.now();
    const a = k.leases.hold(job('a'), k.leases.now());
    // First renewal at 1000 fails, the retry at 1500 takes 300 ms and succeeds.
    await jest.advanceTimersByTimeAsync(1000);
    k.calls[0]!.reject(new Error('connection reset'));
    await jest.advanceTimersByTimeAsync(500);
    expect(k.calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(300);
    k.calls[1]!.resolve(['a']);
    await jest.advanceTimersByTimeAsync(0);
    expect(k.failed).toEqual([1]);
    expect(k.renewed).toEqual([1]);

    // From then on every renewal fails: the next comes a third of a lease after the good one started.
    k.answer(() => new Error('database unavailable'));
    await jest.advanceTimersByTimeAsync(start + 2500 - Date.now());
    expect(k.calls.map((c) => c.at - start)).toEqual([1000, 1500, 2500]);
    expect(k.failed).toEqual([1, 1]);
    // Deadline: 1500 + 3000 − 500 = 4000, well past the claim's own 2500.
    await jest.advanceTimersByTimeAsync(start + 3999 - Date.now());
    expect(a.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(reasonOf(a)).toBe('lapsing');
  });

  it('gives up on time even while a renewal hangs, and ignores the renewal when it comes back late', async () => {
    const k = keeper();
    const start = Date.now();
    const a = k.leases.hold(job('a'), k.leases.now());
    await jest.advanceTimersByTimeAsync(1000);
    expect(k.calls).toHaveLength(1);
    // No second renewal while the first is in flight.
    await jest.advanceTimersByTimeAsync(1499);
    expect(k.calls).toHaveLength(1);
    expect(a.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(k.givenUp).toEqual([{ id: 'a', reason: 'lapsing', at: start + 2500 }]);

    k.calls[0]!.resolve(['a']);
    await jest.advanceTimersByTimeAsync(0);
    expect(k.renewed).toEqual([0]);
    expect(k.givenUp).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('does not report as lost a send that finished while its renewal was in flight', async () => {
    const k = keeper();
    const a = k.leases.hold(job('a'), k.leases.now());
    await jest.advanceTimersByTimeAsync(1000);
    k.leases.finish('a');
    k.calls[0]!.resolve([]);
    await jest.advanceTimersByTimeAsync(0);
    expect(a.aborted).toBe(false);
    expect(k.givenUp).toEqual([]);
  });

  it('stop() aborts the sends held as shutdown, waits for the renewal in flight and clears every timer', async () => {
    const k = keeper();
    const a = k.leases.hold(job('a'), k.leases.now());
    const b = k.leases.hold(job('b'), k.leases.now());
    await jest.advanceTimersByTimeAsync(1000);
    let stopped = false;
    const stopping = k.leases.stop().then(() => {
      stopped = true;
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(reasonOf(a)).toBe('shutdown');
    expect(reasonOf(b)).toBe('shutdown');
    expect(stopped).toBe(false);

    k.calls[0]!.reject(new Error('pool closing'));
    await stopping;
    expect(k.failed).toEqual([]);
    expect(k.givenUp).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);

    const late = k.leases.hold(job('c'), k.leases.now());
    expect(reasonOf(late)).toBe('shutdown');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('does not keep the process alive with its timers', async () => {
    jest.useRealTimers();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const k = keeper();
    k.leases.hold(job('a'), k.leases.now());
    // A renewal timer and a deadline are armed, both unref'd: active resources list only ref'd ones.
    expect(timers()).toBe(before);
    await k.leases.stop();
  });
});
