import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config.js';
import { withTimeout } from '../common/async/with-timeout.js';
import { Database } from './database.js';

/** Readiness: can the database answer `SELECT 1` within a short timeout? */
@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly database: Database,
    private readonly config: AppConfig,
  ) {}

  async ping(key = 'database'): Promise<HealthIndicatorResult> {
    const indicator = this.health.check(key);
    const started = performance.now();
    try {
      await withTimeout(this.database.dataSource.query('SELECT 1'), this.config.readiness.dbTimeoutMs, 'database ping');
      return indicator.up({ mode: this.database.mode, responseTimeMs: Math.round(performance.now() - started) });
    } catch (error) {
      // Only a short reason: a driver message may carry host names.
      const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'unreachable';
      return indicator.down({ mode: this.database.mode, reason });
    }
  }
}
