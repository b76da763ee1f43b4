import { describe, expect, it } from '@jest/globals';
import { LatencyWindow } from './latency-window.js';

describe('LatencyWindow', () => {
  it('has no estimate until minSamples, then the interpolated quantile', () => {
    const window = new LatencyWindow({ quantile: 0.5, minSamples: 3 });
    window.record(10);
    window.record(30);
    expect(window.estimate()).toBeUndefined();
    window.record(20);
    expect(window.estimate()).toBe(20);
  });

  it('keeps the latest `size` samples only', () => {
    const window = new LatencyWindow({ quantile: 0.95, size: 100, minSamples: 10, recomputeEvery: 1 });
    for (let i = 0; i < 100; i++) window.record(500);
    for (let i = 0; i < 100; i++) window.record(10);
    expect(window.size).toBe(100);
    expect(window.estimate()).toBe(10);
  });

  it('recomputes every recomputeEvery samples, not on each one', () => {
    const window = new LatencyWindow({ quantile: 0.5, minSamples: 1, recomputeEvery: 4 });
    window.record(10);
    expect(window.estimate()).toBe(10);
    window.record(100);
    window.record(100);
    expect(window.estimate()).toBe(10); // 2 of 4 new samples
    window.record(100);
    window.record(100);
    expect(window.estimate()).toBe(100);
  });

  it('ignores negative and non-finite samples', () => {
    const window = new LatencyWindow({ quantile: 0.5, minSamples: 1 });
    window.record(-1);
    window.record(Number.NaN);
    window.record(Infinity);
    expect(window.size).toBe(0);
  });

  it('validates its options', () => {
    expect(() => new LatencyWindow({ quantile: 1 })).toThrow(RangeError);
    expect(() => new LatencyWindow({ quantile: 0.5, size: 0 })).toThrow(RangeError);
    expect(() => new LatencyWindow({ quantile: 0.5, size: 10, minSamples: 11 })).toThrow(RangeError);
    expect(() => new LatencyWindow({ quantile: 0.5, recomputeEvery: 0 })).toThrow(RangeError);
  });
});
