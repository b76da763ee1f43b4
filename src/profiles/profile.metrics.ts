import { Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry.js';
import type { CacheStatus, UpstreamName } from './profile.js';

@Injectable()
export class ProfileMetrics {
  private readonly cacheResults: Counter<'result'>;
  private readonly cacheErrors: Counter<'op'>;
  private readonly degraded: Counter<'upstream'>;
  private readonly singleFlightJoins: Counter;
  /** One child per outcome, bound once: `inc({ result })` would hash the labels on every request. */
  private readonly cacheResultOf: Readonly<Record<CacheStatus, { inc(): void }>>;

  constructor(registry: MetricsRegistry) {
    this.cacheResults = new Counter({
      name: 'profile_cache_requests_total',
      help: 'Profile reads by cache outcome: hit, miss, stale',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.cacheResultOf = {
      HIT: this.cacheResults.labels({ result: 'hit' }),
      MISS: this.cacheResults.labels({ result: 'miss' }),
      STALE: this.cacheResults.labels({ result: 'stale' }),
    };
    this.cacheErrors = new Counter({
      name: 'profile_cache_errors_total',
      help: 'Cache operations that failed or timed out (the request went on without the cache)',
      labelNames: ['op'] as const,
      registers: [registry],
    });
    this.degraded = new Counter({
      name: 'profile_degraded_total',
      help: 'Profiles served without an upstream part',
      labelNames: ['upstream'] as const,
      registers: [registry],
    });
    this.singleFlightJoins = new Counter({
      name: 'profile_single_flight_joins_total',
      help: 'Profile requests that joined an upstream round already in flight for the same user',
      registers: [registry],
    });
  }

  cache(result: CacheStatus): void {
    this.cacheResultOf[result].inc();
  }
  cacheError(op: 'get' | 'set' | 'delete' | 'store'): void {
    this.cacheErrors.inc({ op });
  }
  degradedPart(upstream: UpstreamName): void {
    this.degraded.inc({ upstream });
  }
  joined(): void {
    this.singleFlightJoins.inc();
  }
}
