import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { ShutdownState } from './shutdown-state.js';

/** Readiness goes down as soon as draining starts, before the server stops accepting. */
@Injectable()
export class ShutdownHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly state: ShutdownState,
  ) {}

  check(key = 'lifecycle'): HealthIndicatorResult {
    const indicator = this.health.check(key);
    return this.state.draining ? indicator.down({ state: 'draining' }) : indicator.up({ state: 'serving' });
  }
}
