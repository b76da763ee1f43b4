import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import run, { HISTOGRAM_BUCKETS, MAX_VALUES, computeStats, processBytes, validateBody } from './stats.worker.mjs';

/** The definitions, written out plainly. */
function reference(values: readonly number[]) {
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const sum = values.reduce((a, b) => a + b, 0);
  const mean = sum / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  const rank = (p: number) => sorted[Math.max(1, Math.ceil((p * n) / 100)) - 1]!;
  return {
    count: n,
    sum,
    mean,
    stdDev: Math.sqrt(variance),
    min: sorted[0]!,
    max: sorted[n - 1]!,
    percentiles: { p50: rank(50), p95: rank(95), p99: rank(99) },
  };
}

const close = (actual: number, expected: number, scale: number) =>
  Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected), scale);

const finite = fc.double({ min: -1e9, max: 1e9, noNaN: true, noDefaultInfinity: true });
const bytes = (text: string) => new TextEncoder().encode(text);

describe('computeStats', () => {
  it('matches the reference definitions on random data', () => {
    fc.assert(
      fc.property(fc.array(finite, { minLength: 1, maxLength: 300 }), (values) => {
        const got = computeStats(values);
        const want = reference(values);
        const scale = values.reduce((a, v) => a + Math.abs(v), 0);
        expect(got.count).toBe(want.count);
        // -0 and 0 are the same number here: which one min/max returns for [0, -0] is the sort's business.
        expect(got.min + 0).toBe(want.min + 0);
        expect(got.max + 0).toBe(want.max + 0);
        const plus0 = (p: Record<string, number>) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v + 0]));
        expect(plus0(got.percentiles)).toEqual(plus0(want.percentiles));
        expect(close(got.sum, want.sum, scale)).toBe(true);
        expect(close(got.mean, want.mean, scale / values.length)).toBe(true);
        expect(close(got.stdDev, want.stdDev, want.max - want.min)).toBe(true);
        expect(got.stdDev).toBeLessThanOrEqual((want.max - want.min) * (1 + 1e-9));
      }),
      { numRuns: 300 },
    );
  });

  it('puts every value in exactly one of 20 equal-width buckets covering [min, max]', () => {
    fc.assert(
      fc.property(fc.array(finite, { minLength: 2, maxLength: 300 }), (values) => {
        const { histogram, min, max, count } = computeStats(values);
        const { buckets } = histogram;
        if (min === max) {
          expect(buckets).toEqual([{ from: min, to: max, count }]);
          return;
        }
        expect(buckets).toHaveLength(HISTOGRAM_BUCKETS);
        expect(buckets.reduce((a, b) => a + b.count, 0)).toBe(count);
        expect(buckets[0]!.from).toBe(min);
        expect(buckets.at(-1)!.to).toBe(max);
        const width = (max - min) / HISTOGRAM_BUCKETS;
        buckets.forEach((b, i) => {
          expect(Math.abs(b.to - b.from - width)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(max), Math.abs(min)));
          if (i > 0) expect(b.from).toBe(buckets[i - 1]!.to);
          // Counts by the edges as printed: [from, to), the last one closed.
          const last = i === buckets.length - 1;
          expect(b.count).toBe(values.filter((v) => v >= b.from && (last ? v <= b.to : v < b.to)).length);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('uses the nearest-rank definition of percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, shuffled order
    expect(computeStats(values).percentiles).toEqual({ p50: 50, p95: 95, p99: 99 });
    // rank = ceil(p/100 * n): n = 10 gives ranks 5, 10, 10.
    expect(computeStats([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]).percentiles).toEqual({ p50: 5, p95: 10, p99: 10 });
    // n = 3: ranks 2, 3, 3.
    expect(computeStats([30, 10, 20]).percentiles).toEqual({ p50: 20, p95: 30, p99: 30 });
  });

  it('handles one value, all-equal values and negative numbers', () => {
    expect(computeStats([42])).toEqual({
      count: 1,
      sum: 42,
      mean: 42,
      stdDev: 0,
      min: 42,
      max: 42,
      percentiles: { p50: 42, p95: 42, p99: 42 },
      histogram: { buckets: [{ from: 42, to: 42, count: 1 }] },
    });
    const same = computeStats(Array.from({ length: 1000 }, () => -3.25));
    expect(same).toMatchObject({ count: 1000, sum: -3250, mean: -3.25, stdDev: 0, min: -3.25, max: -3.25 });
    expect(same.histogram.buckets).toEqual([{ from: -3.25, to: -3.25, count: 1000 }]);

    const negative = computeStats([-10, -20, -30, -40]);
    expect(negative).toMatchObject({ sum: -100, mean: -25, min: -40, max: -10 });
    expect(negative.stdDev).toBeCloseTo(Math.sqrt(125), 12);
    expect(negative.percentiles).toEqual({ p50: -30, p95: -10, p99: -10 });
    expect(negative.histogram.buckets[0]).toEqual({ from: -40, to: -38.5, count: 1 });
    expect(negative.histogram.buckets.at(-1)).toEqual({ from: -11.5, to: -10, count: 1 });
  });

  it('stays finite in its histogram for values near the largest doubles', () => {
    const { histogram } = computeStats([-Number.MAX_VALUE, 0, Number.MAX_VALUE]);
    expect(histogram.buckets.every((b) => Number.isFinite(b.from) && Number.isFinite(b.to))).toBe(true);
    expect(histogram.buckets.reduce((a, b) => a + b.count, 0)).toBe(3);
  });
});

describe('validateBody', () => {
  const fields = (body: unknown) => {
    const result = validateBody(body);
    return result.ok ? [] : result.errors.map((e) => e.field);
  };

  it('accepts exactly { values: [finite numbers] }', () => {
    expect(validateBody({ values: [1, -2.5, 0] })).toEqual({ ok: true, values: [1, -2.5, 0] });
  });

  it('names each offending field', () => {
    expect(fields([1, 2])).toEqual(['body']);
    expect(fields(null)).toEqual(['body']);
    expect(fields('x')).toEqual(['body']);
    expect(fields({})).toEqual(['values']);
    expect(fields({ values: 'nope' })).toEqual(['values']);
    expect(fields({ values: [] })).toEqual(['values']);
    expect(fields({ values: new Array<number>(MAX_VALUES + 1).fill(1) })).toEqual(['values']);
    expect(fields({ values: [1, '2', null, Infinity, 5] })).toEqual(['values.1', 'values.2', 'values.3']);
    expect(fields({ values: [1], extra: true })).toEqual(['extra']);
    expect(fields({ values: new Array<unknown>(50).fill('x') })).toHaveLength(11);
  });
});

describe('processBytes', () => {
  it('parses, validates and computes', () => {
    const result = processBytes(bytes('{"values":[1,2,3,4]}'));
    expect(result.ok && result.stats).toMatchObject({ count: 4, sum: 10, mean: 2.5 });
  });

  it('tags bodies that are not UTF-8 JSON as invalid_json', () => {
    for (const body of [bytes(''), bytes('{"values":'), new Uint8Array([0x7b, 0xff, 0x7d])]) {
      expect(processBytes(body)).toMatchObject({ ok: false, reason: 'invalid_json' });
    }
  });

  it('refuses values whose sum overflows', () => {
    expect(processBytes(bytes(JSON.stringify({ values: [1.7e308, 1.7e308] })))).toMatchObject({
      ok: false,
      reason: 'validation_failed',
      errors: [{ field: 'values' }],
    });
  });

  it('runs as a piscina task on a transferred ArrayBuffer', () => {
    const { buffer } = bytes('{"values":[5]}');
    expect(run({ buffer })).toMatchObject({ ok: true, stats: { count: 1, sum: 5 } });
  });
});
