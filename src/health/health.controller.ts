import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { ShutdownHealthIndicator } from '../common/lifecycle/shutdown.health.js';
import { DatabaseHealthIndicator } from '../database/database.health.js';
import { RedisHealthIndicator } from '../redis/redis.health.js';
import { SkipRateLimit } from '../resilience/nest/rate-limit.decorator.js';
import { Public } from '../auth/access.decorators.js';

/**
 * Readiness in Terminus's own format (not problem documents). Liveness
 * (`GET /health`) is a prepared snapshot served by `liveness.route.ts`.
 */
@ApiTags('health')
@SkipRateLimit()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly shutdown: ShutdownHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  @Get('ready')
  @Public()
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOkResponse({ description: 'Ready for traffic: the database answers and the process is not draining' })
  @ApiServiceUnavailableResponse({ description: 'Not ready; `error` says which check failed' })
  async readiness(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    return this.run(reply, [() => this.shutdown.check(), () => this.database.ping(), () => this.redis.check()]);
  }

  private async run(
    reply: FastifyReply,
    checks: Parameters<HealthCheckService['check']>[0],
  ): Promise<HealthCheckResult> {
    void reply.header('cache-control', 'no-store');
    try {
      return await this.health.check(checks);
    } catch (error) {
      // Terminus signals "down" with a 503 exception carrying its result: answer it as is.
      if (error instanceof ServiceUnavailableException) {
        void reply.status(503);
        return error.getResponse() as HealthCheckResult;
      }
      throw error;
    }
  }
}
