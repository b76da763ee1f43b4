import { describe, expect, it } from '@jest/globals';
import { exponentialBackoff, type Jitter } from './backoff.js';

/** Small seeded PRNG (mulberry32): a repeatable stream of values in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const attempts = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('exponentialBackoff', () => {
  it('without jitter grows by the factor from the base and stops at the cap', () => {
    const backoff = exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 1_000, jitter: 'none' });
    expect(attempts(7).map(backoff)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('honours a custom factor', () => {
    const backoff = exponentialBackoff({ baseDelayMs: 10, factor: 3, maxDelayMs: 10_000, jitter: 'none' });
    expect(attempts(4).map(backoff)).toEqual([10, 30, 90, 270]);
  });

  it('full jitter (the default) scales the capped delay by random()', () => {
    const backoff = exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 1_000, random: () => 0.5 });
    expect(attempts(6).map(backoff)).toEqual([50, 100, 200, 400, 500, 500]);
    expect(exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 1_000, random: () => 0 })(3)).toBe(0);
  });

  it('equal jitter keeps half the delay and randomises the other half', () => {
    const at = (r: number) =>
      exponentialBackoff({ baseDelayMs: 100, maxDelayMs: 1_000, jitter: 'equal', random: () => r })(3);
    expect(at(0)).toBe(200);
    expect(at(0.5)).toBe(300);
  });

  it.each<[Jitter, number, number]>([
    ['full', 0, 1],
    ['equal', 0.5, 1],
    ['none', 1, 1],
  ])('%s jitter stays within [%d, %d] x the capped delay for a seeded stream', (jitter, low, high) => {
    const base = 50;
    const max = 3_000;
    const backoff = exponentialBackoff({ baseDelayMs: base, maxDelayMs: max, jitter, random: seeded(42) });
    const seen = new Set<number>();
    for (let round = 0; round < 50; round++) {
      for (const attempt of attempts(12)) {
        const capped = Math.min(max, base * 2 ** (attempt - 1));
        const delay = backoff(attempt);
        seen.add(delay);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(low * capped));
        expect(delay).toBeLessThanOrEqual(high * capped);
        if (jitter === 'full') expect(delay).toBeLessThan(capped);
      }
    }
    // The randomness really is used: many distinct values, not a constant.
    if (jitter !== 'none') expect(seen.size).toBeGreaterThan(50);
  });

  it('the cap is monotone and survives huge attempt numbers without overflowing', () => {
    const backoff = exponentialBackoff({ baseDelayMs: 7, factor: 2.5, maxDelayMs: 60_000, jitter: 'none' });
    const delays = attempts(3_000).map(backoff);
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(delays.at(-1)).toBe(60_000);
    expect(delays.every((d) => Number.isFinite(d) && d <= 60_000)).toBe(true);
  });

  it('a zero base always waits 0 (no 0 x Infinity = NaN)', () => {
    const backoff = exponentialBackoff({ baseDelayMs: 0, maxDelayMs: 0, jitter: 'none' });
    expect(backoff(1)).toBe(0);
    expect(backoff(5_000)).toBe(0);
  });

  it.each([
    [{ baseDelayMs: -1, maxDelayMs: 10 }, /baseDelayMs/],
    [{ baseDelayMs: Number.NaN, maxDelayMs: 10 }, /baseDelayMs/],
    [{ baseDelayMs: 10, maxDelayMs: 5 }, /maxDelayMs/],
    [{ baseDelayMs: 10, maxDelayMs: Number.POSITIVE_INFINITY }, /maxDelayMs/],
    [{ baseDelayMs: 10, maxDelayMs: 50, factor: 0.5 }, /factor/],
  ])('rejects bad options %j', (options, message) => {
    expect(() => exponentialBackoff(options)).toThrow(message);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects attempt %p (attempts start at 1)', (attempt) => {
    const backoff = exponentialBackoff({ baseDelayMs: 10, maxDelayMs: 50 });
    expect(() => backoff(attempt)).toThrow(RangeError);
  });
});
