import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { RedisConnection } from '../../redis/redis.connection.js';
import { LocalTokenBucketStore, type RateLimiterStore, type TakeResult } from '../rate-limiter.js';
import { RedisTokenBucketStore } from '../redis-token-bucket.store.js';
import type { RouteRateLimit } from './rate-limit.decorator.js';
import { ResilienceMetrics } from './resilience.metrics.js';

export interface LimiterSnapshot {
  readonly name: string;
  readonly rate: number;
  readonly capacity: number;
  readonly backend: 'redis' | 'local';
  readonly degraded: boolean;
  readonly trackedClients: number;
  readonly rejected: number;
}

interface Limiter {
  readonly limit: RouteRateLimit;
  readonly local: LocalTokenBucketStore;
  readonly store: RateLimiterStore;
  readonly redis: RedisTokenBucketStore | undefined;
  rejected: number;
}

/**
 * Per-client token buckets for HTTP routes: one bucket family per policy
 * name. With Redis configured, buckets live there (one budget shared by every
 * instance) and fall back to the local bucket while Redis does not answer.
 */
@Injectable()
export class HttpRateLimiter {
  private readonly logger = new Logger('RateLimiter');
  private readonly limiters = new Map<string, Limiter>();
  readonly defaultLimit: RouteRateLimit;
  /** Anonymous callers of @AnonymousBudget routes; undefined when RATE_LIMIT_ANONYMOUS_RATE is 0. */
  readonly anonymousLimit: RouteRateLimit | undefined;
  private readonly keyPrefix: string;

  constructor(
    config: AppConfig,
    private readonly redis: RedisConnection,
    private readonly metrics: ResilienceMetrics,
  ) {
    this.keyPrefix = config.redisKeyPrefix;
    this.defaultLimit = { name: 'default', rate: config.rateLimit.rate, capacity: config.rateLimit.capacity };
    const { anonymousRate, anonymousCapacity } = config.rateLimit;
    this.anonymousLimit =
      anonymousRate > 0 && anonymousCapacity > 0
        ? { name: 'anonymous', rate: anonymousRate, capacity: anonymousCapacity }
        : undefined;
  }

  /**
   * Takes a token from `clientKey`'s bucket of `limit`: synchronously when the
   * bucket is local (no Redis), so the request hook then costs no promise.
   */
  take(limit: RouteRateLimit, clientKey: string): TakeResult | Promise<TakeResult> {
    const limiter = this.limiterFor(limit);
    if (limiter.redis === undefined) return this.count(limiter, limiter.local.takeSync(clientKey));
    return limiter.store.take(clientKey).then((result) => this.count(limiter, result));
  }

  private count(limiter: Limiter, result: TakeResult): TakeResult {
    if (!result.allowed) {
      limiter.rejected++;
      this.metrics.rateLimited.inc({ policy: limiter.limit.name, source: result.source });
    }
    return result;
  }

  snapshot(): LimiterSnapshot[] {
    return [...this.limiters.values()].map((l) => ({
      name: l.limit.name,
      rate: l.limit.rate,
      capacity: l.limit.capacity,
      backend: l.redis === undefined ? 'local' : 'redis',
      degraded: l.redis?.snapshot().degraded ?? false,
      trackedClients: l.local.size,
      rejected: l.rejected,
    }));
  }

  private limiterFor(limit: RouteRateLimit): Limiter {
    const existing = this.limiters.get(limit.name);
    if (existing !== undefined) return existing;
    const local = new LocalTokenBucketStore({ ratePerSec: limit.rate, capacity: limit.capacity });
    const client = this.redis.client;
    const redis =
      client === undefined
        ? undefined
        : new RedisTokenBucketStore({
            client,
            fallback: local,
            keyPrefix: `${this.keyPrefix}ratelimit:${limit.name}:`,
          });
    // Its recovery is news only when its fallback was (Redis slow or refusing while connected).
    let warned = false;
    redis?.onFallback(({ error }) => {
      this.metrics.limiterFallbacks.inc();
      const message = 'redis rate limiter unavailable; limiting on the local bucket';
      this.redis.reportFailure(this.logger, message, error, { policy: limit.name }, () => {
        warned = true;
      });
    });
    redis?.onRecover(({ degradedForMs }) => {
      const fields = { policy: limit.name, degradedForMs };
      if (warned) this.logger.log(fields, 'redis rate limiter answering again');
      else this.logger.debug(fields, 'redis rate limiter answering again');
      warned = false;
    });
    const limiter: Limiter = { limit, local, store: redis ?? local, redis, rejected: 0 };
    this.limiters.set(limit.name, limiter);
    return limiter;
  }
}
