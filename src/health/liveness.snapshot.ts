import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { HealthCheckResult } from '@nestjs/terminus';
import { ProcessHealthIndicator } from './process.health.js';

/** How often the facts behind /health are read again. */
export const LIVENESS_REFRESH_MS = 1_000;

/**
 * The body of `GET /health`, prepared ahead: the process indicator runs in the
 * background once a second and its Terminus-shaped result is serialised into
 * bytes, so a probe costs one write however often it comes. `memoryUsage()`
 * and `cpuUsage()` were the largest functions of the route when they ran per
 * request; now the answer is at most {@link LIVENESS_REFRESH_MS} old.
 */
@Injectable()
export class LivenessSnapshot implements OnModuleInit, OnModuleDestroy {
  private body = Buffer.alloc(0);
  private takenAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly process: ProcessHealthIndicator) {}

  onModuleInit(): void {
    this.refresh();
    this.timer = setInterval(() => {
      this.refresh();
    }, LIVENESS_REFRESH_MS);
    // A probe's snapshot must never keep the process alive.
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The prepared JSON body of the last snapshot. */
  get bytes(): Buffer {
    return this.body;
  }

  /** When the last snapshot was taken (`performance.now()` ms). */
  get lastTakenAt(): number {
    return this.takenAt;
  }

  /** Reads the process facts now and prepares the body. */
  refresh(): void {
    const info = this.process.check();
    // Terminus's own result shape, as HealthCheckService would build it for one indicator.
    const result: HealthCheckResult = { status: 'ok', info, error: {}, details: info };
    this.body = Buffer.from(JSON.stringify(result));
    this.takenAt = performance.now();
  }
}
