import { routeConfig } from '../../common/http/route-config.decorator.js';

export interface RouteRateLimit {
  /** Names the bucket family in headers, metrics and /resilience. */
  readonly name: string;
  /** Tokens per second per client. */
  readonly rate: number;
  /** Burst per client. */
  readonly capacity: number;
}

/** A route's rule: its own bucket family, or none at all. */
export type RateLimitRule = RouteRateLimit | 'skip';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set by @RateLimit / @SkipRateLimit (or a raw route's config); unset: the global bucket. */
    rateLimit?: RateLimitRule;
    /** Set by @AnonymousBudget: callers without a verified token draw from the smaller anonymous bucket. */
    anonymousBudget?: boolean;
  }
}

/** The rule travels in the route's Fastify config, so the limiter acts in `onRequest`, before the body is read. */
const rateLimitRule = (rule: RateLimitRule) => routeConfig('rateLimit', rule);

/** Gives a route (or every route of a controller) its own per-client token bucket instead of the global one. */
export const RateLimit = (limit: RouteRateLimit) => rateLimitRule(limit);

/** Exempts a route (or controller) from rate limiting: probes and scrapes must always answer. */
export const SkipRateLimit = () => rateLimitRule('skip');

/** Anonymous callers of this route draw from their own, smaller bucket (RATE_LIMIT_ANONYMOUS_*). */
export const AnonymousBudget = () => routeConfig('anonymousBudget', true);
