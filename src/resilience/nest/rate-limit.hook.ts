import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { TakeResult } from '../rate-limiter.js';
import { RateLimitedError } from '../resilience.errors.js';
import type { HttpRateLimiter } from './http-rate-limiter.js';
import type { RouteRateLimit } from './rate-limit.decorator.js';

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** Who a request is charged to: a bucket key, and whether the caller is anonymous. */
export interface RateLimitClient {
  readonly key: string;
  readonly anonymous: boolean;
}

export interface RateLimitHookOptions {
  /** The global bucket applies to routes without a rule of their own. */
  readonly enabled: boolean;
  /** The app's limiter, once Nest has built it (no request arrives before). */
  readonly limiter: () => HttpRateLimiter | undefined;
  /** Who the request is charged to (the verified caller, else the client address). */
  readonly clientOf: (request: FastifyRequest) => RateLimitClient;
}

/**
 * The per-caller token bucket as a Fastify `onRequest` hook: it runs before
 * the body is read, so a refused request costs less than an admitted one and
 * a flood of large bodies never reaches the parser. The route's rule comes
 * from its config (@RateLimit / @SkipRateLimit). Answers carry the IETF
 * RateLimit headers (draft-ietf-httpapi-ratelimit-headers-09); over the limit
 * the request fails with RateLimitedError, a 429 problem with Retry-After.
 */
export function registerRateLimitHook(fastify: FastifyInstance, options: RateLimitHookOptions): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const config = request.routeOptions.config;
    const rule = config.rateLimit;
    const limiter = options.limiter();
    if (rule === 'skip' || limiter === undefined) {
      done();
      return;
    }
    const client = options.clientOf(request);
    const anonymous = client.anonymous && config.anonymousBudget === true ? limiter.anonymousLimit : undefined;
    if (anonymous === undefined && rule === undefined && !options.enabled) {
      done();
      return;
    }
    const limit = anonymous ?? rule ?? limiter.defaultLimit;
    const result = limiter.take(limit, client.key);
    if (result instanceof Promise) {
      result.then(
        (r) => {
          answer(limit, r, reply, done);
        },
        (error: unknown) => {
          done(error as Error);
        },
      );
      return;
    }
    answer(limit, result, reply, done);
  });
}

function answer(limit: RouteRateLimit, result: TakeResult, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const nextToken = result.allowed
    ? result.remaining >= limit.capacity
      ? 0
      : seconds(1000 / limit.rate)
    : seconds(result.retryAfterMs);
  const window = seconds((limit.capacity / limit.rate) * 1000);
  void reply.header('ratelimit-policy', `"${limit.name}";q=${String(limit.capacity)};w=${String(window)}`);
  void reply.header('ratelimit', `"${limit.name}";r=${String(Math.floor(result.remaining))};t=${String(nextToken)}`);
  if (result.allowed) done();
  else done(new RateLimitedError(limit.name, result.retryAfterMs));
}
