import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { RestartPolicy } from './restart-policy.js';

const options = { baseDelayMs: 100, maxDelayMs: 500, maxCrashes: 5, windowMs: 60_000 };

describe('RestartPolicy', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('doubles the delay with each crash inside the window, capped', () => {
    const policy = new RestartPolicy({ ...options, maxCrashes: 10 });
    const delays = Array.from({ length: 6 }, () => policy.onCrash());
    expect(delays).toEqual([100, 200, 400, 500, 500, 500]);
  });

  it('gives up on the crash that reaches maxCrashes within the window', () => {
    const policy = new RestartPolicy(options);
    for (let i = 0; i < 4; i++) {
      expect(policy.onCrash()).toBeDefined();
      jest.advanceTimersByTime(10_000);
    }
    expect(policy.onCrash()).toBeUndefined();
  });

  it('forgets crashes older than the window: an occasional crash is always restarted, at the base delay', () => {
    const policy = new RestartPolicy(options);
    for (let i = 0; i < 20; i++) {
      expect(policy.onCrash()).toBe(100);
      jest.advanceTimersByTime(60_000);
    }
  });

  it('counts only the crashes still inside the window', () => {
    const policy = new RestartPolicy(options);
    policy.onCrash(); // t = 0
    jest.advanceTimersByTime(30_000);
    policy.onCrash(); // t = 30 s
    jest.advanceTimersByTime(30_000);
    // t = 60 s: the first crash has left the window, so this is the second of two.
    expect(policy.onCrash()).toBe(200);
  });
});
