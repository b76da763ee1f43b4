import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { onAbort } from './abort.js';
import { HedgePolicy, type HedgePolicyOptions, type HedgeSkippedEvent } from './hedge.policy.js';
import type { PolicyContext } from './policy.js';
import { isCancelledError } from './resilience.errors.js';

/** An attempt that answers `value` (or fails with `error`) after `ms` of fake time, unless aborted. */
const after =
  <T>(ms: number, value: T, error?: Error) =>
  ({ signal }: PolicyContext): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (error === undefined) resolve(value);
        else reject(error);
      }, ms);
      onAbort(signal, () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      });
    });

/** Runs attempts from `plan` in order: the first call gets plan[0], the hedge plan[1]. */
function legs<T>(...plan: ((context: PolicyContext) => Promise<T>)[]) {
  const signals: AbortSignal[] = [];
  let next = 0;
  const fn = jest.fn((context: PolicyContext) => {
    signals.push(context.signal);
    const leg = plan[Math.min(next++, plan.length - 1)];
    if (leg === undefined) throw new Error('no leg planned');
    return leg(context);
  });
  return { fn, signals };
}

function setup(options: Partial<HedgePolicyOptions> = {}) {
  const hedge = new HedgePolicy({ name: 'posts', delayMs: 50, budgetRatio: 1, ...options });
  const hedges: number[] = [];
  const wins: string[] = [];
  const skips: HedgeSkippedEvent['reason'][] = [];
  hedge.onHedge(({ delayMs }) => hedges.push(delayMs));
  hedge.onHedgeWin(({ name }) => wins.push(name));
  hedge.onHedgeSkipped(({ reason }) => skips.push(reason));
  return { hedge, hedges, wins, skips };
}

/** Settles a promise while fake time runs. */
async function settle<T>(promise: Promise<T>, ms = 10_000): Promise<{ value?: T; error?: unknown }> {
  const outcome = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  await jest.advanceTimersByTimeAsync(ms);
  return outcome;
}

describe('HedgePolicy', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('answers without a hedge when the first attempt beats the delay, leaving no timer behind', async () => {
    const { hedge, hedges } = setup();
    const { fn } = legs(after(10, 'fast'));
    expect(await settle(hedge.execute(fn))).toEqual({ value: 'fast' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(hedges).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('sends a hedge after the delay; the hedge answering first wins and the first attempt is aborted', async () => {
    const { hedge, hedges, wins } = setup();
    const { fn, signals } = legs(after(500, 'slow'), after(10, 'hedged'));
    const outcome = settle(hedge.execute(fn), 70);
    expect(await outcome).toEqual({ value: 'hedged' });
    expect(fn).toHaveBeenCalledTimes(2);
    expect(hedges).toEqual([50]);
    expect(wins).toEqual(['posts']);
    expect(signals[0]?.aborted).toBe(true);
    expect(isCancelledError(signals[0]?.reason)).toBe(true);
    expect(signals[1]?.aborted).toBe(false);
    expect(jest.getTimerCount()).toBe(0); // the loser's work was cut, not left to finish
  });

  it('keeps the first attempt when it answers after the hedge was sent but before it', async () => {
    const { hedge, wins } = setup();
    const { fn, signals } = legs(after(60, 'first'), after(100, 'hedged'));
    expect(await settle(hedge.execute(fn))).toEqual({ value: 'first' });
    expect(fn).toHaveBeenCalledTimes(2);
    expect(wins).toEqual([]);
    expect(signals[1]?.aborted).toBe(true);
  });

  it('fails at once when the first attempt fails before the delay: nothing to hedge for', async () => {
    const { hedge, hedges } = setup();
    const boom = new Error('503');
    const { fn } = legs(after(10, 'x', boom));
    expect(await settle(hedge.execute(fn), 20)).toEqual({ error: boom });
    expect(hedges).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('after the hedge was sent, fails only when both failed, with the first attempt’s error', async () => {
    const { hedge } = setup();
    const first = new Error('first');
    const second = new Error('second');
    const rescued = legs(after(80, 'x', first), after(60, 'hedged'));
    expect(await settle(hedge.execute(rescued.fn))).toEqual({ value: 'hedged' });
    const both = legs(after(80, 'x', first), after(10, 'x', second));
    expect(await settle(hedge.execute(both.fn))).toEqual({ error: first });
  });

  it('sends no hedge to a breaker that is not closed (canHedge false)', async () => {
    let allowed = false;
    const { hedge, hedges, skips } = setup({ canHedge: () => allowed });
    const { fn } = legs(after(200, 'slow'));
    expect(await settle(hedge.execute(fn))).toEqual({ value: 'slow' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(hedges).toEqual([]);
    expect(skips).toEqual(['not_allowed']);
    allowed = true;
    const again = legs(after(200, 'slow'), after(10, 'hedged'));
    expect(await settle(hedge.execute(again.fn))).toEqual({ value: 'hedged' });
  });

  describe('budget', () => {
    it('allows hedges up to the ratio of recent calls, then skips until calls age out of the window', async () => {
      const { hedge, hedges, skips } = setup({ budgetRatio: 0.1, budgetWindowMs: 10_000 });
      // 100 calls at once, every one slow: a dependency slow for everyone gets 10 % more load, not 2x.
      const calls = Array.from({ length: 100 }, () => hedge.execute(legs(after(200, 'slow'), after(200, 'hedged')).fn));
      await settle(Promise.all(calls), 1_000);
      expect(hedges).toHaveLength(10);
      expect(skips.filter((s) => s === 'budget_exhausted')).toHaveLength(90);
      expect(hedge.snapshot().budget).toMatchObject({ calls: 100, hedges: 10, exhausted: true });

      await jest.advanceTimersByTimeAsync(10_000); // the window has slid past those calls
      expect(hedge.snapshot().budget).toMatchObject({ calls: 0, hedges: 0 });
      const later = Array.from({ length: 10 }, () => hedge.execute(legs(after(200, 'slow'), after(10, 'hedged')).fn));
      await settle(Promise.all(later), 1_000);
      expect(hedges).toHaveLength(11); // 10 % of 10 calls
    });

    it('with a budget of 0 never hedges', async () => {
      const { hedge, hedges } = setup({ budgetRatio: 0 });
      await settle(hedge.execute(legs(after(200, 'slow')).fn));
      expect(hedges).toEqual([]);
    });
  });

  describe('adaptive delay (no delayMs)', () => {
    it('does not hedge while learning, then waits the recent p95 of answer times', async () => {
      const { hedge, hedges } = setup({ delayMs: undefined });
      expect(hedge.snapshot()).toMatchObject({ adaptive: true, delayMs: undefined });
      // A long tail: 19 of 20 answers at 10 ms, one at 500 ms.
      for (let i = 0; i < 19; i++) await settle(hedge.execute(legs(after(10, 'ok')).fn), 20);
      expect(hedge.delayMs).toBeUndefined();
      await settle(hedge.execute(legs(after(500, 'tail')).fn), 600);
      expect(hedges).toEqual([]); // still learning when it started
      const delay = hedge.delayMs ?? 0;
      expect(delay).toBeGreaterThanOrEqual(10);
      expect(delay).toBeLessThan(500);

      const { fn } = legs(after(500, 'tail'), after(10, 'hedged'));
      expect(await settle(hedge.execute(fn), 600)).toEqual({ value: 'hedged' });
      expect(hedges).toHaveLength(1);
      expect(hedges[0]).toBeCloseTo(Math.round(delay), 0);
    });
  });

  it('learns from the winning attempt’s own time, so hedges that win do not push the delay up', async () => {
    const { hedge, hedges } = setup({ delayMs: undefined });
    for (let i = 0; i < 40; i++) await settle(hedge.execute(legs(after(10, 'ok')).fn), 20);
    const learnt = hedge.delayMs ?? 0;
    expect(learnt).toBe(10);
    // A run of slow first attempts, each rescued by a 10 ms hedge: the call answers at delay + 10 ms.
    for (let i = 0; i < 100; i++) await settle(hedge.execute(legs(after(500, 'slow'), after(10, 'hedged')).fn), 30);
    expect(hedges).toHaveLength(100);
    expect(hedge.delayMs).toBe(learnt);
  });

  it('a caller abort aborts both attempts with the caller’s reason', async () => {
    const { hedge } = setup();
    const caller = new AbortController();
    const { fn, signals } = legs(after(500, 'slow'), after(500, 'slow'));
    const outcome = settle(hedge.execute(fn, caller.signal), 0);
    await jest.advanceTimersByTimeAsync(60);
    const reason = new Error('client went away');
    caller.abort(reason);
    expect(await outcome).toEqual({ error: reason });
    expect(signals.map((s) => s.reason as unknown)).toEqual([reason, reason]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejects an already-aborted signal without calling fn', async () => {
    const { hedge } = setup();
    const caller = new AbortController();
    caller.abort(new Error('gone'));
    const fn = jest.fn(() => 'never');
    expect(() => hedge.execute(fn, caller.signal)).toThrow('gone');
    expect(fn).not.toHaveBeenCalled();
  });

  it('validates its options', () => {
    expect(() => new HedgePolicy({ name: 'x', budgetRatio: 1.5 })).toThrow(RangeError);
    expect(() => new HedgePolicy({ name: 'x', budgetRatio: 0.1, delayMs: -1 })).toThrow(RangeError);
  });
});
