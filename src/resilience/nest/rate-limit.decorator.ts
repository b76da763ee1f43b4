import { SetMetadata } from '@nestjs/common';

export const RATE_LIMIT_METADATA = 'resilience:rate-limit';

export interface RouteRateLimit {
  /** Names the bucket family in headers, metrics and /resilience. */
  readonly name: string;
  /** Tokens per second per client. */
  readonly rate: number;
  /** Burst per client. */
  readonly capacity: number;
}

/** Gives a route (or controller) its own per-client token bucket instead of the global one. */
export const RateLimit = (limit: RouteRateLimit) => SetMetadata(RATE_LIMIT_METADATA, limit);

/** Exempts a route (or controller) from rate limiting: probes and scrapes must always answer. */
export const SkipRateLimit = () => SetMetadata(RATE_LIMIT_METADATA, 'skip');
