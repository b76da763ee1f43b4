import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { RedisConnection } from './redis.connection.js';

/**
 * Redis is optional: when it is down the service keeps working on local
 * fallbacks, so readiness reports its state without failing on it.
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly redis: RedisConnection,
  ) {}

  check(key = 'redis'): HealthIndicatorResult {
    const indicator = this.health.check(key);
    if (!this.redis.configured) return indicator.up({ mode: 'disabled' });
    return indicator.up({
      mode: 'shared',
      connected: this.redis.ready,
      ...(this.redis.ready ? {} : { fallback: 'local' }),
    });
  }
}
