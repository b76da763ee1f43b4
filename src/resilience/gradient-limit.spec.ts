import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { Clock } from './clock.js';
import { EventEmitter } from './event.js';
import { GradientLimit, type GradientLimitChangeEvent, type GradientLimitOptions } from './gradient-limit.js';

/** A clock the tests move by hand: exact, and no sleeping. */
class ManualClock implements Clock {
  t = 1_000;
  now(): number {
    return this.t;
  }
}

const NO_LOAD_MS = 10;

const setup = (overrides: Partial<GradientLimitOptions> = {}) => {
  const clock = new ManualClock();
  const gradient = new GradientLimit({
    initialLimit: 10,
    minLimit: 2,
    maxLimit: 100,
    smoothing: 1,
    tolerance: 1.5,
    windowMs: 100,
    minSamples: 5,
    probeIntervalMs: 10_000,
    clock,
    ...overrides,
  });
  const changes: GradientLimitChangeEvent[] = [];
  const subscription = gradient.onLimitChange((change) => changes.push(change));

  /** Ends the probe with `minSamples` calls started now, each taking `rttMs`. */
  const probe = (rttMs = NO_LOAD_MS): void => {
    for (let i = 0; i < gradient.settings.minSamples; i++) gradient.sample(clock.t, rttMs, 1);
  };

  /**
   * Lets a window last `windowMs`, then feeds it `count` samples (by default
   * just enough to close it) of `rttMs`, started with `inFlight` running.
   */
  const window = (rttMs: number, inFlight: number, count = gradient.settings.minSamples): void => {
    clock.t += gradient.settings.windowMs;
    for (let i = 0; i < count; i++) gradient.sample(clock.t - rttMs, rttMs, inFlight);
  };

  return { clock, gradient, changes, subscription, probe, window };
};

describe('GradientLimit', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  describe('options', () => {
    it.each<[string, Partial<GradientLimitOptions>]>([
      ['minLimit 0', { minLimit: 0 }],
      ['minLimit 1.5', { minLimit: 1.5 }],
      ['minLimit NaN', { minLimit: Number.NaN }],
      ['maxLimit below minLimit', { minLimit: 5, initialLimit: 5, maxLimit: 4 }],
      ['maxLimit Infinity', { maxLimit: Infinity }],
      ['initialLimit below minLimit', { initialLimit: 1 }],
      ['initialLimit above maxLimit', { initialLimit: 101 }],
      ['initialLimit 2.5', { initialLimit: 2.5 }],
      ['smoothing 0', { smoothing: 0 }],
      ['smoothing 1.01', { smoothing: 1.01 }],
      ['smoothing NaN', { smoothing: Number.NaN }],
      ['tolerance 0.99', { tolerance: 0.99 }],
      ['tolerance NaN', { tolerance: Number.NaN }],
      ['tolerance Infinity', { tolerance: Infinity }],
      ['windowMs 0', { windowMs: 0 }],
      ['windowMs NaN', { windowMs: Number.NaN }],
      ['windowMs Infinity', { windowMs: Infinity }],
      ['minSamples 0', { minSamples: 0 }],
      ['minSamples 2.5', { minSamples: 2.5 }],
      ['probeIntervalMs 0', { probeIntervalMs: 0 }],
      ['probeIntervalMs -1', { probeIntervalMs: -1 }],
      ['probeIntervalMs NaN', { probeIntervalMs: Number.NaN }],
    ])('rejects %s', (_label, overrides) => {
      expect(() => setup(overrides)).toThrow(RangeError);
    });

    it('accepts the boundaries: one fixed limit, smoothing 1, tolerance 1, one sample', () => {
      const { gradient } = setup({
        initialLimit: 3,
        minLimit: 3,
        maxLimit: 3,
        smoothing: 1,
        tolerance: 1,
        minSamples: 1,
      });
      expect(gradient.limit).toBe(3);
    });

    it('needs 10 samples when minSamples is not given', () => {
      const { gradient } = setup({ minSamples: undefined });
      expect(gradient.settings.minSamples).toBe(10);
    });
  });

  describe('probe', () => {
    it('starts at minLimit, takes the median as no-load latency, then returns to initialLimit', () => {
      const { clock, gradient, changes } = setup();
      expect(gradient.snapshot()).toEqual({ limit: 2, noLoadMs: undefined, phase: 'probing', lastRttMs: undefined });

      for (const rtt of [30, 10, 50, 20]) gradient.sample(clock.t, rtt, 1);
      expect(gradient.snapshot()).toMatchObject({ limit: 2, phase: 'probing' });
      gradient.sample(clock.t, 40, 1);

      expect(gradient.snapshot()).toEqual({ limit: 10, noLoadMs: 30, phase: 'tracking', lastRttMs: undefined });
      expect(gradient.noLoadMs).toBe(30);
      expect(changes).toEqual([{ from: 2, to: 10, noLoadMs: 30, rttMs: undefined }]);
    });

    it('ignores calls that started before the probe began', () => {
      const { clock, gradient } = setup();
      for (let i = 0; i < 20; i++) gradient.sample(clock.t - 1, 500, 8);
      expect(gradient.snapshot()).toMatchObject({ phase: 'probing', noLoadMs: undefined });

      for (let i = 0; i < 5; i++) gradient.sample(clock.t, 12, 1);
      expect(gradient.snapshot()).toMatchObject({ phase: 'tracking', noLoadMs: 12 });
    });

    it('ends after windowMs with at least one sample, even fewer than minSamples', () => {
      const { clock, gradient } = setup();
      gradient.sample(clock.t, 20, 1);
      clock.t += 99;
      gradient.sample(clock.t, 30, 1);
      expect(gradient.snapshot().phase).toBe('probing');

      clock.t += 1;
      gradient.sample(clock.t, 40, 1);
      expect(gradient.snapshot()).toMatchObject({ phase: 'tracking', noLoadMs: 30, limit: 10 });
    });

    it('counts its window from its first own sample: a probe begun at boot and idle since does not end on one', () => {
      const { clock, gradient } = setup();
      clock.t += 500;
      gradient.sample(999, 500, 8);
      expect(gradient.snapshot().phase).toBe('probing');

      // Long after the probe began, but its first sample of its own (a cold call, say).
      gradient.sample(clock.t, 200, 1);
      expect(gradient.snapshot().phase).toBe('probing');
      clock.t += 1_000;
      gradient.sample(clock.t, 10, 1);
      expect(gradient.snapshot()).toMatchObject({ phase: 'tracking', noLoadMs: 105 });
    });

    it('takes the mean of the middle two of an even count', () => {
      const { clock, gradient } = setup({ minSamples: 4 });
      for (const rtt of [40, 10, 30, 20]) gradient.sample(clock.t, rtt, 1);
      expect(gradient.noLoadMs).toBe(25);
    });
  });

  describe('tracking', () => {
    it('grows by the square root while latency stays within tolerance and callers use the limit', () => {
      const { gradient, changes, probe, window } = setup();
      probe();

      window(NO_LOAD_MS, 10);
      expect(gradient.limit).toBe(13); // 10 + sqrt(10) = 13.16
      expect(gradient.snapshot().lastRttMs).toBe(NO_LOAD_MS);
      window(15, 13); // exactly tolerance × no-load: gradient 1
      expect(gradient.limit).toBe(16); // 13.16 + sqrt(13.16) = 16.79
      window(14, 16);
      expect(gradient.limit).toBe(20); // 16.79 + 4.10 = 20.89

      expect(changes.slice(1)).toEqual([
        { from: 10, to: 13, noLoadMs: NO_LOAD_MS, rttMs: 10 },
        { from: 13, to: 16, noLoadMs: NO_LOAD_MS, rttMs: 15 },
        { from: 16, to: 20, noLoadMs: NO_LOAD_MS, rttMs: 14 },
      ]);
    });

    it('does not grow while the callers use less than half the limit (app-limited)', () => {
      const { gradient, probe, window } = setup();
      probe();

      for (let i = 0; i < 10; i++) window(NO_LOAD_MS, 4);
      expect(gradient.limit).toBe(10);

      window(NO_LOAD_MS, 5); // half the limit is enough
      expect(gradient.limit).toBe(13);
    });

    it('shrinks when latency rises even with few callers, halving-ish per window, never below minLimit', () => {
      const { gradient, probe, window } = setup({ initialLimit: 100, minLimit: 5 });
      probe();

      const limits: number[] = [];
      for (let i = 0; i < 30; i++) {
        window(3 * NO_LOAD_MS, 1); // gradient 1.5 × 10 / 30 = 0.5
        limits.push(gradient.limit);
      }

      // L / 2 + sqrt(L): 60, 37.7, 25.0, 17.5, 12.9, ...
      expect(limits.slice(0, 5)).toEqual([60, 37, 25, 17, 12]);
      expect(limits.every((limit, i) => limit >= 5 && (i === 0 || limit <= limits[i - 1]!))).toBe(true);
      expect(limits.at(-1)).toBe(5);
    });

    it('cuts by at most half in one window, however slow', () => {
      const { gradient, probe, window } = setup({ initialLimit: 100 });
      probe();
      window(1_000 * NO_LOAD_MS, 100);
      expect(gradient.limit).toBe(60);
    });

    it('never grows above maxLimit, and shrinks from maxLimit rather than from an inflated estimate', () => {
      const { gradient, probe, window } = setup({ maxLimit: 12 });
      probe();
      for (let i = 0; i < 10; i++) window(NO_LOAD_MS, gradient.limit);
      expect(gradient.limit).toBe(12);

      window(3 * NO_LOAD_MS, 12);
      expect(gradient.limit).toBe(9); // 6 + sqrt(12) = 9.46
    });

    it('moves the estimate towards the new limit by the smoothing factor', () => {
      const grow = setup({ initialLimit: 16, smoothing: 0.5 });
      grow.probe();
      grow.window(NO_LOAD_MS, 16); // new 20: 16 × 0.5 + 20 × 0.5
      expect(grow.gradient.limit).toBe(18);
      grow.window(NO_LOAD_MS, 18); // new 18 + sqrt(18) = 22.24: 20.12
      expect(grow.gradient.limit).toBe(20);

      const shrink = setup({ initialLimit: 16, smoothing: 0.25 });
      shrink.probe();
      shrink.window(3 * NO_LOAD_MS, 16); // new 8 + 4 = 12: 16 × 0.75 + 12 × 0.25
      expect(shrink.gradient.limit).toBe(15);

      // Small steps are kept in the float estimate until they add up to a whole slot.
      const slow = setup({ initialLimit: 16, smoothing: 0.1 });
      slow.probe();
      slow.window(NO_LOAD_MS, 16); // 16.4
      expect(slow.gradient.limit).toBe(16);
      slow.window(NO_LOAD_MS, 16); // 16.81
      expect(slow.gradient.limit).toBe(16);
      slow.window(NO_LOAD_MS, 16); // 17.22
      expect(slow.gradient.limit).toBe(17);
      expect(slow.changes.slice(1)).toEqual([{ from: 16, to: 17, noLoadMs: NO_LOAD_MS, rttMs: NO_LOAD_MS }]);
    });

    it('keeps a window open until it has lasted windowMs and holds minSamples, averaging all it holds', () => {
      const { clock, gradient, probe, window } = setup();
      probe();

      // Many samples, but too soon.
      for (let i = 0; i < 50; i++) gradient.sample(clock.t, NO_LOAD_MS, 10);
      clock.t += 99;
      gradient.sample(clock.t, NO_LOAD_MS, 10);
      expect(gradient.limit).toBe(10);
      clock.t += 1;
      gradient.sample(clock.t, NO_LOAD_MS, 10);
      expect(gradient.limit).toBe(13);

      // Long enough, but too few: the window goes on across several windowMs and closes once.
      window(NO_LOAD_MS, 13, 4);
      clock.t += 5 * gradient.settings.windowMs;
      expect(gradient.limit).toBe(13);
      gradient.sample(clock.t, 110, 13); // average (4 × 10 + 110) / 5 = 30: gradient 0.5
      expect(gradient.snapshot()).toMatchObject({ limit: 10, lastRttMs: 30 }); // 6.58 + 3.63 = 10.21
    });

    it('treats zero latency as within tolerance', () => {
      const { gradient, probe, window } = setup();
      probe(0);
      window(0, 10);
      expect(gradient.limit).toBe(13);
    });

    it('ignores samples that are not a duration', () => {
      const { gradient, probe, window } = setup();
      probe();
      for (const rtt of [Number.NaN, -1, Infinity]) window(rtt, 10);
      expect(gradient.snapshot()).toMatchObject({ limit: 10, lastRttMs: undefined });
    });
  });

  describe('re-probe', () => {
    it('probes again probeIntervalMs after the probe ended, dropping the window and older calls', () => {
      const { clock, gradient, changes, probe, window } = setup();
      probe();
      window(NO_LOAD_MS, 10);
      expect(gradient.limit).toBe(13);
      // A slow window in progress when the probe is due: dropped, it never shrinks the limit.
      window(1_000, 13, 3);

      clock.t = 1_000 + 10_000 - 1;
      gradient.sample(clock.t - 1_000, 1_000, 13);
      expect(gradient.snapshot()).toMatchObject({ phase: 'tracking', limit: 13 });
      clock.t += 1;
      const probeStart = clock.t;
      gradient.sample(clock.t - 1_000, 1_000, 13);
      expect(gradient.snapshot()).toMatchObject({ phase: 'probing', limit: 2, noLoadMs: NO_LOAD_MS });
      expect(changes.at(-1)).toEqual({ from: 13, to: 2, noLoadMs: NO_LOAD_MS, rttMs: undefined });

      // Calls admitted under the old limit finish during the probe: not no-load samples.
      for (let i = 0; i < 20; i++) gradient.sample(probeStart - 1, 1_000, 13);
      expect(gradient.snapshot().phase).toBe('probing');
      clock.t += 30;
      for (let i = 0; i < 5; i++) gradient.sample(probeStart + 10, 20, 1);

      expect(gradient.snapshot()).toMatchObject({ phase: 'tracking', limit: 13, noLoadMs: 20 });
      expect(changes.at(-1)).toEqual({ from: 2, to: 13, noLoadMs: 20, rttMs: undefined });

      // The next probe is due probeIntervalMs after this one ended.
      const probeEnd = clock.t;
      window(20, 13); // 20 is the new no-load latency: within tolerance, so it grows
      expect(gradient.limit).toBe(16);
      clock.t = probeEnd + 10_000 - 1;
      gradient.sample(clock.t - 20, 20, 13);
      expect(gradient.snapshot().phase).toBe('tracking');
      clock.t += 1;
      gradient.sample(clock.t - 20, 20, 13);
      expect(gradient.snapshot().phase).toBe('probing');
    });

    it('with initialLimit = minLimit, a probe changes no limit and fires nothing', () => {
      const { gradient, changes, probe } = setup({ initialLimit: 2 });
      probe();
      expect(gradient.snapshot()).toMatchObject({ phase: 'tracking', limit: 2 });
      expect(changes).toEqual([]);
    });
  });

  describe('onLimitChange', () => {
    it('builds no event without listeners, and reports from the current limit after subscribing', () => {
      const { clock, gradient, subscription: first } = setup({ minSamples: 1 });
      first.dispose();
      const emit = jest.spyOn(EventEmitter.prototype, 'emit');
      gradient.sample(clock.t, NO_LOAD_MS, 1); // 2 -> 10
      clock.t += 100;
      gradient.sample(clock.t, NO_LOAD_MS, 10); // 10 -> 13
      expect(gradient.limit).toBe(13);
      expect(emit).not.toHaveBeenCalled();

      const changes: GradientLimitChangeEvent[] = [];
      const subscription = gradient.onLimitChange((change) => changes.push(change));
      clock.t += 100;
      gradient.sample(clock.t, NO_LOAD_MS, 13);
      expect(changes).toEqual([{ from: 13, to: 16, noLoadMs: NO_LOAD_MS, rttMs: NO_LOAD_MS }]);

      subscription.dispose();
      clock.t += 100;
      gradient.sample(clock.t, NO_LOAD_MS, 16);
      expect(gradient.limit).toBe(20);
      expect(changes).toHaveLength(1);
      expect(emit).toHaveBeenCalledTimes(1);
    });
  });

  describe('closed loop with a queueing upstream', () => {
    const CAPACITY = 8;
    const SERVICE_MS = 40;
    const CLIENTS = 64;

    interface Call {
      readonly startedAt: number;
      readonly endsAt: number;
      readonly rttMs: number;
      readonly inFlight: number;
    }

    /**
     * Simulates, millisecond by millisecond, `CLIENTS` callers that each start
     * a call whenever they are idle and the limit admits it (like
     * AdaptiveConcurrencyPolicy), against an upstream that serves `CAPACITY`
     * calls at once in `SERVICE_MS` and queues the rest:
     * rtt = SERVICE_MS × max(1, inFlight / CAPACITY).
     */
    const simulate = (gradient: GradientLimit, clock: ManualClock, durationMs: number) => {
      const running: Call[] = []; // by endsAt
      let inFlight = 0;
      const trace: { t: number; limit: number; phase: 'probing' | 'tracking'; noLoadMs: number | undefined }[] = [];
      const end = clock.t + durationMs;
      for (; clock.t < end; clock.t++) {
        while (running.length > 0 && running[0]!.endsAt <= clock.t) {
          const call = running.shift()!;
          inFlight--;
          gradient.sample(call.startedAt, call.rttMs, call.inFlight);
        }
        while (inFlight < CLIENTS && inFlight < gradient.limit) {
          inFlight++;
          const rttMs = SERVICE_MS * Math.max(1, inFlight / CAPACITY);
          const call = { startedAt: clock.t, endsAt: clock.t + rttMs, rttMs, inFlight };
          const after = running.findIndex((other) => other.endsAt > call.endsAt);
          running.splice(after === -1 ? running.length : after, 0, call);
        }
        const { limit, phase, noLoadMs } = gradient.snapshot();
        trace.push({ t: clock.t, limit, phase, noLoadMs });
      }
      return trace;
    };

    it.each([
      ['below', 1],
      ['above', 90],
    ])('converges from %s to a limit between C and 3C and stays there, probes included', (_label, initialLimit) => {
      const clock = new ManualClock();
      const gradient = new GradientLimit({
        initialLimit,
        minLimit: 1,
        maxLimit: 100,
        smoothing: 0.2,
        tolerance: 1.5,
        windowMs: 200,
        probeIntervalMs: 10_000,
        clock,
      });
      const start = clock.t;

      const trace = simulate(gradient, clock, 60_000);

      const settled = trace.filter((point) => point.t >= start + 10_000);
      const tracking = settled.filter((point) => point.phase === 'tracking');
      expect(tracking.length).toBeGreaterThan(settled.length * 0.9);
      const limits = tracking.map((point) => point.limit);
      expect(Math.min(...limits)).toBeGreaterThanOrEqual(CAPACITY);
      expect(Math.max(...limits)).toBeLessThanOrEqual(3 * CAPACITY);
      // Every probe ran at minLimit and measured the bare service time.
      const probes = settled.filter((point) => point.phase === 'probing');
      expect(probes.every((point) => point.limit === 1)).toBe(true);
      const probeStarts = settled.filter(
        (point, i) => point.phase === 'probing' && settled[i - 1]?.phase === 'tracking',
      );
      expect(probeStarts.length).toBeGreaterThanOrEqual(4);
      expect(new Set(settled.map((point) => point.noLoadMs))).toEqual(new Set([SERVICE_MS]));
    });
  });
});
