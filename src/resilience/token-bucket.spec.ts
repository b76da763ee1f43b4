import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import {
  assertBucketLimits,
  assertCost,
  take,
  TOKEN_EPSILON,
  type BucketLimits,
  type BucketState,
} from './token-bucket.js';

/** Slack for float drift in the budget checks: far below one token, far above the rounding. */
const TOLERANCE = 1e-6;

const limitsArb: fc.Arbitrary<BucketLimits> = fc.record({
  ratePerSec: fc.oneof(
    fc.integer({ min: 1, max: 50 }),
    fc.integer({ min: 1, max: 1_000 }),
    fc.double({ min: 0.01, max: 5_000, noNaN: true, noDefaultInfinity: true }),
  ),
  capacity: fc.oneof(
    fc.integer({ min: 1, max: 10 }),
    fc.integer({ min: 1, max: 100 }),
    fc.double({ min: 0.5, max: 100, noNaN: true }),
  ),
});

/** A scenario: limits, a start time and requests of (time step, cost as a fraction of capacity). */
const scenarioArb = (stepArb: fc.Arbitrary<number>) =>
  fc.record({
    limits: limitsArb,
    startMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 41 })),
    requests: fc.array(
      fc.record({
        stepMs: stepArb,
        costShare: fc.oneof(fc.constant(1), fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
        unitCost: fc.boolean(),
      }),
      { minLength: 1, maxLength: 200, size: 'medium' },
    ),
  });

/** Mostly bursts (0-50 ms apart), which drain buckets, with some long pauses, which refill them. */
const integerStep = fc.oneof(
  { arbitrary: fc.constant(0), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 50 }), weight: 5 },
  { arbitrary: fc.integer({ min: 0, max: 5_000 }), weight: 1 },
);
const fractionalStep = fc.oneof(integerStep, fc.double({ min: 0, max: 2_000, noNaN: true }));

/** Cost of one request: 1 when it fits (the common case), else a share of capacity. */
const costOf = (limits: BucketLimits, r: { costShare: number; unitCost: boolean }): number =>
  r.unitCost && limits.capacity >= 1 ? 1 : r.costShare * limits.capacity;

describe('take (pure token bucket)', () => {
  const limits = { ratePerSec: 2, capacity: 3 };

  it('starts a new bucket full and takes from it', () => {
    const first = take(undefined, 1_000, limits);
    expect(first).toEqual({
      allowed: true,
      state: { tokens: 2, updatedAtMs: 1_000 },
      remaining: 2,
      retryAfterMs: 0,
      resetMs: 500,
    });
  });

  it('denies when empty, with the ms until the cost is there, and takes nothing', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 3; i++) state = take(state, 0, limits).state;
    const denied = take(state, 0, limits);
    expect(denied).toEqual({
      allowed: false,
      state: { tokens: 0, updatedAtMs: 0 },
      remaining: 0,
      retryAfterMs: 500,
      resetMs: 1_500,
    });
    expect(take(denied.state, 499, limits).allowed).toBe(false);
    expect(take(denied.state, 500, limits).allowed).toBe(true);
    expect(take(denied.state, 0, limits, 2).retryAfterMs).toBe(1_000);
  });

  it('refills at ratePerSec, capped at capacity', () => {
    const empty: BucketState = { tokens: 0, updatedAtMs: 0 };
    expect(take(empty, 250, limits, 0).state.tokens).toBe(0.5);
    expect(take(empty, 1_000, limits, 0).state.tokens).toBe(2);
    expect(take(empty, 60_000, limits, 0).state).toEqual({ tokens: 3, updatedAtMs: 60_000 });
  });

  it('rounds retryAfterMs up to whole ms', () => {
    const third = { ratePerSec: 3, capacity: 1 };
    const drained = take(undefined, 0, third).state;
    const denied = take(drained, 0, third);
    expect(denied.retryAfterMs).toBe(334); // 333.33… ms for one token
    expect(take(denied.state, 333, third).allowed).toBe(false);
    expect(take(denied.state, 334, third).allowed).toBe(true);
  });

  it('absorbs float drift: ten refills of 0.1 token make one token', () => {
    const tenth = { ratePerSec: 1, capacity: 1 };
    let state: BucketState = { tokens: 0, updatedAtMs: 0 };
    for (let t = 100; t <= 1_000; t += 100) state = take(state, t, tenth, 0).state;
    expect(state.tokens).not.toBe(1); // 0.9999999999999999
    expect(take(state, 1_000, tenth).allowed).toBe(true);
  });

  it('never adds tokens when the clock steps back, and keeps updatedAtMs', () => {
    const state: BucketState = { tokens: 1, updatedAtMs: 10_000 };
    const back = take(state, 9_000, limits, 0);
    expect(back.state).toEqual(state);
    // Until 10 000 nothing refills: the waits count from there.
    const denied = take(state, 9_000, limits, 2);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBe(1_000 + 500);
    expect(take(denied.state, 9_000 + denied.retryAfterMs, limits, 2).allowed).toBe(true);
    expect(take(denied.state, 9_000 + denied.retryAfterMs - 1, limits, 2).allowed).toBe(false);
  });

  it('admits cost 0 always and clamps a stored state outside 0..capacity', () => {
    expect(take({ tokens: 0, updatedAtMs: 0 }, 0, limits, 0)).toMatchObject({ allowed: true, retryAfterMs: 0 });
    expect(take({ tokens: 50, updatedAtMs: 0 }, 0, limits, 0).state.tokens).toBe(3);
    expect(take({ tokens: -5, updatedAtMs: 0 }, 0, limits, 0).state.tokens).toBe(0);
  });

  it('validates limits and cost', () => {
    expect(() => {
      assertBucketLimits({ ratePerSec: 0, capacity: 1 });
    }).toThrow(RangeError);
    expect(() => {
      assertBucketLimits({ ratePerSec: 1, capacity: Number.NaN });
    }).toThrow(RangeError);
    expect(() => {
      assertBucketLimits({ ratePerSec: Infinity, capacity: 1 });
    }).toThrow(RangeError);
    expect(() => {
      assertCost(4, limits);
    }).toThrow(/0\.\.3/);
    expect(() => {
      assertCost(-1, limits);
    }).toThrow(RangeError);
    expect(() => {
      assertCost(Number.NaN, limits);
    }).toThrow(RangeError);
    expect(() => {
      assertCost(3, limits);
    }).not.toThrow();
  });

  describe('properties', () => {
    it('never admits more than capacity + rate * elapsed (every prefix, every window); stays within 0..capacity', () => {
      fc.assert(
        fc.property(scenarioArb(fractionalStep), ({ limits: l, startMs, requests }) => {
          let state: BucketState | undefined;
          let now = startMs;
          const times: number[] = [];
          const admittedCost: number[] = [];
          for (const r of requests) {
            now += r.stepMs;
            const cost = costOf(l, r);
            const outcome = take(state, now, l, cost);
            state = outcome.state;
            times.push(now);
            admittedCost.push(outcome.allowed ? cost : 0);
            expect(state.tokens).toBeGreaterThanOrEqual(0);
            expect(state.tokens).toBeLessThanOrEqual(l.capacity);
            expect(outcome.remaining).toBe(Math.floor(state.tokens + TOKEN_EPSILON));
          }
          // Requests i..j, whatever came before, fit in one burst plus the refill over [t_i, t_j].
          // i = 0 covers the cumulative total at every prefix.
          for (let i = 0; i < times.length; i++) {
            let admitted = 0;
            let admissions = 0;
            for (let j = i; j < times.length; j++) {
              const cost = admittedCost[j]!;
              admitted += cost;
              if (cost > 0) admissions++;
              const budget = l.capacity + (l.ratePerSec * (times[j]! - times[i]!)) / 1000;
              if (admitted - budget > TOLERANCE + admissions * TOKEN_EPSILON) {
                throw new Error(`requests ${i}..${j} admitted ${admitted} > budget ${budget}`);
              }
            }
          }
        }),
        { numRuns: 150 },
      );
    });

    it('retryAfterMs is exact: a take that much later succeeds, 1 ms earlier fails', () => {
      let denials = 0;
      fc.assert(
        fc.property(scenarioArb(integerStep), ({ limits: l, startMs, requests }) => {
          let state: BucketState | undefined;
          let now = startMs;
          for (const r of requests) {
            now += r.stepMs;
            const cost = costOf(l, r);
            const outcome = take(state, now, l, cost);
            state = outcome.state;
            if (outcome.allowed) {
              expect(outcome.retryAfterMs).toBe(0);
              continue;
            }
            denials++;
            const wait = outcome.retryAfterMs;
            expect(Number.isInteger(wait)).toBe(true);
            expect(wait).toBeGreaterThanOrEqual(1);
            expect(take(state, now + wait, l, cost).allowed).toBe(true);
            expect(take(state, now + wait - 1, l, cost).allowed).toBe(false);
          }
        }),
        { numRuns: 200 },
      );
      // The generators must actually drain buckets for this to prove anything.
      expect(denials).toBeGreaterThan(1_000);
    });

    it('resetMs is exact: the bucket is full that much later and not 1 ms earlier', () => {
      fc.assert(
        fc.property(scenarioArb(integerStep), ({ limits: l, startMs, requests }) => {
          let state: BucketState | undefined;
          let now = startMs;
          for (const r of requests) {
            now += r.stepMs;
            const outcome = take(state, now, l, costOf(l, r));
            state = outcome.state;
            const full = (at: number): boolean => take(state, at, l, 0).state.tokens + TOKEN_EPSILON >= l.capacity;
            expect(full(now + outcome.resetMs)).toBe(true);
            if (outcome.resetMs > 0) expect(full(now + outcome.resetMs - 1)).toBe(false);
          }
        }),
        { numRuns: 200 },
      );
    });

    it('admits nothing twice: each admission consumes exactly its cost, a denial nothing; refill <= rate * dt', () => {
      fc.assert(
        fc.property(scenarioArb(fractionalStep), ({ limits: l, startMs, requests }) => {
          let state: BucketState | undefined;
          let now = startMs;
          let allowedCount = 0;
          let unitTokensConsumed = 0;
          for (const r of requests) {
            now += r.stepMs;
            const cost = costOf(l, r);
            // What the bucket holds right before this request (cost 0 changes nothing).
            const before = take(state, now, l, 0).state.tokens;
            if (state !== undefined) {
              // Together with the exact consumption below, this bounds admissions by capacity + rate * elapsed.
              const gained = before - state.tokens;
              expect(gained).toBeGreaterThanOrEqual(0);
              expect(gained).toBeLessThanOrEqual((l.ratePerSec * (now - state.updatedAtMs)) / 1000 + 1e-9);
            }
            const outcome = take(state, now, l, cost);
            state = outcome.state;
            const consumed = before - state.tokens;
            if (outcome.allowed) {
              // Exactly `cost`, or everything left when within epsilon of it.
              expect(consumed).toBeCloseTo(Math.min(cost, before), 9);
              if (cost === 1) {
                allowedCount++;
                unitTokensConsumed += consumed;
              }
            } else {
              expect(consumed).toBe(0);
            }
          }
          expect(unitTokensConsumed).toBeCloseTo(allowedCount, 6);
        }),
        { numRuns: 200 },
      );
    });

    it('a clock stepping back never adds tokens and never admits beyond the budget', () => {
      const backAndForth = fc.oneof(integerStep, fc.integer({ min: -5_000, max: 0 }));
      fc.assert(
        fc.property(scenarioArb(backAndForth), ({ limits: l, startMs, requests }) => {
          let state: BucketState | undefined;
          let now = startMs;
          let first: number | undefined;
          let latest = -Infinity;
          let admitted = 0;
          let admissions = 0;
          for (const r of requests) {
            now += r.stepMs;
            // The bucket is created, full, by the first request.
            first ??= now;
            const cost = costOf(l, r);
            const before = state;
            const outcome = take(state, now, l, cost);
            state = outcome.state;
            if (before !== undefined && now <= before.updatedAtMs) {
              expect(state.tokens).toBeLessThanOrEqual(before.tokens);
              expect(state.updatedAtMs).toBe(before.updatedAtMs);
            }
            if (outcome.allowed) {
              admitted += cost;
              admissions++;
            }
            latest = Math.max(latest, now);
            const budget = l.capacity + (l.ratePerSec * (latest - first)) / 1000;
            expect(admitted).toBeLessThanOrEqual(budget + TOLERANCE + admissions * TOKEN_EPSILON);
          }
        }),
        { numRuns: 200 },
      );
    });
  });
});
