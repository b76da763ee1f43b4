import { Global, Module } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { AdminGuard } from '../../common/auth/admin.guard.js';
import { BulkheadInterceptor } from './bulkhead.interceptor.js';
import { HttpRateLimiter } from './http-rate-limiter.js';
import { PolicyRegistry } from './policy.registry.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { ResilienceController } from './resilience.controller.js';
import { ResilienceMetrics } from './resilience.metrics.js';
import { TimeoutInterceptor } from './timeout.interceptor.js';

/**
 * The Nest side of the resilience library: the policy registry, the global
 * rate-limit guard, and the timeout and bulkhead interceptors behind their
 * decorators. Feature modules inject PolicyRegistry and ask for a dependency.
 */
@Global()
@Module({
  controllers: [ResilienceController],
  providers: [
    ResilienceMetrics,
    PolicyRegistry,
    HttpRateLimiter,
    AdminGuard,
    { provide: APP_GUARD, useClass: RateLimitGuard },
    // Timeout outermost, so a request waiting in a bulkhead queue still answers 504 on time.
    { provide: APP_INTERCEPTOR, useClass: TimeoutInterceptor },
    { provide: APP_INTERCEPTOR, useClass: BulkheadInterceptor },
  ],
  exports: [PolicyRegistry, HttpRateLimiter],
})
export class ResilienceModule {}
