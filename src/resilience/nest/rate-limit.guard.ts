import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { AppConfig } from '../../config/app-config.js';
import { RateLimitedError } from '../resilience.errors.js';
import { HttpRateLimiter } from './http-rate-limiter.js';
import { RATE_LIMIT_METADATA, type RouteRateLimit } from './rate-limit.decorator.js';

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * Who a request is charged to: its API key or bearer subject when it has one
 * (hashed, so secrets never become Redis keys or labels), else the client IP
 * (X-Forwarded-For counts only when TRUST_PROXY names the proxy).
 */
export function clientKeyOf(request: FastifyRequest): string {
  const apiKey = request.headers['x-api-key'];
  const auth = request.headers.authorization;
  const credential =
    typeof apiKey === 'string' && apiKey !== ''
      ? apiKey
      : auth?.startsWith('Bearer ') === true
        ? auth.slice(7)
        : undefined;
  if (credential !== undefined)
    return `key:${createHash('sha256').update(credential).digest('base64url').slice(0, 22)}`;
  return `ip:${request.ip}`;
}

/**
 * Global token-bucket guard. Answers carry the IETF RateLimit headers
 * (draft-ietf-httpapi-ratelimit-headers-09 structured fields); over the
 * limit it throws RateLimitedError, which becomes a 429 problem with Retry-After.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly limiter: HttpRateLimiter,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const meta = this.reflector.getAllAndOverride<RouteRateLimit | 'skip' | undefined>(RATE_LIMIT_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (meta === 'skip') return true;
    const limit = meta ?? this.limiter.defaultLimit;
    if (meta === undefined && !this.config.rateLimit.enabled) return true;

    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const result = await this.limiter.take(limit, clientKeyOf(request));
    const window = seconds((limit.capacity / limit.rate) * 1000);
    const nextToken = result.allowed
      ? result.remaining >= limit.capacity
        ? 0
        : seconds(1000 / limit.rate)
      : seconds(result.retryAfterMs);
    void reply.header('ratelimit-policy', `"${limit.name}";q=${String(limit.capacity)};w=${String(window)}`);
    void reply.header('ratelimit', `"${limit.name}";r=${String(Math.floor(result.remaining))};t=${String(nextToken)}`);
    if (!result.allowed) throw new RateLimitedError(limit.name, result.retryAfterMs);
    return true;
  }
}
