import { Global, Module } from '@nestjs/common';
import { BreakerSync } from './breaker.sync.js';
import { BulkheadInterceptor } from './bulkhead.interceptor.js';
import { HttpRateLimiter } from './http-rate-limiter.js';
import { PolicyRegistry } from './policy.registry.js';
import { ResilienceController } from './resilience.controller.js';
import { ResilienceMetrics } from './resilience.metrics.js';
import { TimeoutInterceptor } from './timeout.interceptor.js';

/**
 * The Nest side of the resilience library: the policy registry, the HTTP
 * rate limiter (applied by the `onRequest` hook of `rate-limit.hook.ts`), and
 * the timeout and bulkhead interceptors behind their decorators. Feature modules inject PolicyRegistry and ask for a dependency.
 */
@Global()
@Module({
  controllers: [ResilienceController],
  providers: [
    ResilienceMetrics,
    PolicyRegistry,
    BreakerSync,
    HttpRateLimiter,
    // Attached per route by @Timeout / @Bulkhead: routes without them skip the interceptor chain.
    TimeoutInterceptor,
    BulkheadInterceptor,
  ],
  exports: [PolicyRegistry, HttpRateLimiter, TimeoutInterceptor, BulkheadInterceptor],
})
export class ResilienceModule {}
