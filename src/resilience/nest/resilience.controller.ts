import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../../common/errors/problem.dto.js';
import { RedisConnection } from '../../redis/redis.connection.js';
import { HttpRateLimiter, type LimiterSnapshot } from './http-rate-limiter.js';
import { PolicyRegistry } from './policy.registry.js';
import type { PipelineSnapshot } from '../pipeline.js';
import { Scopes } from '../../auth/access.decorators.js';

/** Admin view of every named policy: breaker state, failure ratio, bulkhead use, limiter, retry budget. */
@ApiTags('admin')
@Scopes('admin')
@Controller('resilience')
export class ResilienceController {
  constructor(
    private readonly registry: PolicyRegistry,
    private readonly limiter: HttpRateLimiter,
    private readonly redis: RedisConnection,
  ) {}

  @Get()
  @ApiOkResponse({ description: 'Every named policy and rate limiter with its live state' })
  @ApiProblems(401, 403)
  state(): {
    policies: PipelineSnapshot[];
    rateLimiters: LimiterSnapshot[];
    redis: { configured: boolean; connected: boolean };
  } {
    return {
      policies: this.registry.all().map((p) => p.snapshot()),
      rateLimiters: this.limiter.snapshot(),
      redis: { configured: this.redis.configured, connected: this.redis.ready },
    };
  }
}
