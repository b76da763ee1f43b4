import { FASTIFY_ROUTE_CONFIG_METADATA } from '@nestjs/platform-fastify/constants.js';

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
  }
}

type Handler = (...args: never[]) => unknown;

const ruleOf = (handler: Handler): RateLimitRule | undefined =>
  (Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, handler) as { rateLimit?: RateLimitRule } | undefined)?.rateLimit;

function setRule(handler: Handler, rule: RateLimitRule): void {
  const config = (Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, handler) ?? {}) as Record<string, unknown>;
  Reflect.defineMetadata(FASTIFY_ROUTE_CONFIG_METADATA, { ...config, rateLimit: rule }, handler);
}

/**
 * The rule travels in the route's Fastify config (Nest copies a handler's
 * route config onto the Fastify route), so the limiter can act in `onRequest`,
 * before the body is read. On a class it applies to every method that has no
 * rule of its own (method decorators run first).
 */
function rateLimitRule(rule: RateLimitRule): ClassDecorator & MethodDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor): void => {
    if (descriptor !== undefined) {
      setRule(descriptor.value as Handler, rule);
      return;
    }
    const prototype = (target as { prototype: Record<string, unknown> }).prototype;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const value = prototype[name];
      if (name === 'constructor' || typeof value !== 'function') continue;
      if (ruleOf(value as Handler) === undefined) setRule(value as Handler, rule);
    }
  };
}

/** Gives a route (or every route of a controller) its own per-client token bucket instead of the global one. */
export const RateLimit = (limit: RouteRateLimit) => rateLimitRule(limit);

/** Exempts a route (or controller) from rate limiting: probes and scrapes must always answer. */
export const SkipRateLimit = () => rateLimitRule('skip');
