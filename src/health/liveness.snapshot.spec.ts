import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { LIVENESS_REFRESH_MS, LivenessSnapshot } from './liveness.snapshot.js';
import type { ProcessHealthIndicator } from './process.health.js';

describe('LivenessSnapshot', () => {
  let checks: number;
  let snapshot: LivenessSnapshot;

  beforeEach(() => {
    jest.useFakeTimers();
    checks = 0;
    const indicator = {
      check: (): HealthIndicatorResult => {
        checks++;
        return { process: { status: 'up', check: checks } };
      },
    } as unknown as ProcessHealthIndicator;
    snapshot = new LivenessSnapshot(indicator);
  });
  afterEach(() => {
    snapshot.onModuleDestroy();
    jest.useRealTimers();
  });

  const body = () => JSON.parse(snapshot.bytes.toString('utf8')) as Record<string, unknown>;

  it('is ready at init, in Terminus format', () => {
    snapshot.onModuleInit();
    expect(body()).toEqual({
      status: 'ok',
      info: { process: { status: 'up', check: 1 } },
      error: {},
      details: { process: { status: 'up', check: 1 } },
    });
  });

  it('serves the same bytes between refreshes and is never older than the refresh period', () => {
    snapshot.onModuleInit();
    const first = snapshot.bytes;
    jest.advanceTimersByTime(LIVENESS_REFRESH_MS - 1);
    // Reading costs nothing: no indicator run, the very same buffer.
    for (let i = 0; i < 100; i++) expect(snapshot.bytes).toBe(first);
    expect(checks).toBe(1);
    jest.advanceTimersByTime(1);
    expect(checks).toBe(2);
    expect(snapshot.bytes).not.toBe(first);
    expect(body()).toMatchObject({ details: { process: { check: 2 } } });
    for (let i = 0; i < 10; i++) {
      jest.advanceTimersByTime(LIVENESS_REFRESH_MS);
      expect(performance.now() - snapshot.lastTakenAt).toBeLessThanOrEqual(LIVENESS_REFRESH_MS);
    }
    expect(checks).toBe(12);
  });

  it('stops refreshing once destroyed, and its timer never holds the process', () => {
    snapshot.onModuleInit();
    snapshot.onModuleDestroy();
    jest.advanceTimersByTime(LIVENESS_REFRESH_MS * 5);
    expect(checks).toBe(1);
    expect(jest.getTimerCount()).toBe(0);
  });
});
