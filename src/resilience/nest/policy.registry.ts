import { Injectable, Logger } from '@nestjs/common';
import { DomainEvents } from '../../common/events/domain-events.js';
import { AppConfig } from '../../config/app-config.js';
import { ResiliencePipeline, type PipelineSettings } from '../pipeline.js';
import { BreakerSync } from './breaker.sync.js';
import { ResilienceMetrics } from './resilience.metrics.js';

/**
 * Hands out one composed pipeline per named dependency (`posts`, `comments`,
 * `smtp`, `database`, ...), built from config on first use and shared after.
 */
@Injectable()
export class PolicyRegistry {
  private readonly logger = new Logger('Resilience');
  private readonly pipelines = new Map<string, ResiliencePipeline>();

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: ResilienceMetrics,
    private readonly events: DomainEvents,
    private readonly sync: BreakerSync,
  ) {}

  get(name: string): ResiliencePipeline {
    let pipeline = this.pipelines.get(name);
    if (pipeline === undefined) {
      pipeline = new ResiliencePipeline(name, this.settingsFor(name));
      this.pipelines.set(name, pipeline);
      this.metrics.observe(pipeline);
      pipeline.breaker.onStateChange(({ from, to, remote }) => {
        const fields = { policy: name, from, to };
        // BreakerSync logs the transitions another instance caused.
        if (remote) this.logger.debug(fields, 'circuit breaker followed another instance');
        else if (to === 'open') this.logger.warn(fields, 'circuit breaker opened');
        else this.logger.log(fields, `circuit breaker ${to === 'closed' ? 'closed' : 'half-open'}`);
        this.events.publish('breaker.state', fields);
      });
      if (this.config.policy(name).BREAKER_SHARED) this.sync.share(pipeline.breaker);
    }
    return pipeline;
  }

  all(): ResiliencePipeline[] {
    return [...this.pipelines.values()];
  }

  private settingsFor(name: string): PipelineSettings {
    const p = this.config.policy(name);
    return {
      breakerFailures: p.BREAKER_FAILURES,
      breakerFailureRatio: p.BREAKER_FAILURE_RATIO,
      breakerMinCalls: p.BREAKER_MIN_CALLS,
      breakerWindowMs: p.BREAKER_WINDOW_MS,
      breakerSlowCallMs: p.BREAKER_SLOW_CALL_MS,
      breakerCooldownMs: p.BREAKER_COOLDOWN_MS,
      breakerHalfOpenProbes: p.BREAKER_HALF_OPEN_PROBES,
      retryMaxAttempts: p.RETRY_MAX_ATTEMPTS,
      retryBaseDelayMs: p.RETRY_BASE_DELAY_MS,
      retryMaxDelayMs: p.RETRY_MAX_DELAY_MS,
      retryBudgetRatio: p.RETRY_BUDGET_RATIO,
      timeoutMs: p.TIMEOUT_MS,
      deadlineMs: p.DEADLINE_MS,
      bulkheadMaxConcurrent: p.BULKHEAD_MAX_CONCURRENT,
      bulkheadMaxQueue: p.BULKHEAD_MAX_QUEUE,
      bulkheadQueueTimeoutMs: p.BULKHEAD_QUEUE_TIMEOUT_MS,
      ...(p.HEDGE_ENABLED
        ? {
            hedge: {
              ...(p.HEDGE_DELAY_MS > 0 ? { delayMs: p.HEDGE_DELAY_MS } : {}),
              budgetPercent: p.HEDGE_BUDGET_PERCENT,
            },
          }
        : {}),
      ...(p.CONCURRENCY === 'adaptive'
        ? {
            adaptiveConcurrency: {
              minLimit: p.ADAPTIVE_MIN_LIMIT,
              maxLimit: p.ADAPTIVE_MAX_LIMIT,
              initialLimit: p.ADAPTIVE_INITIAL_LIMIT,
              smoothing: p.ADAPTIVE_SMOOTHING,
              tolerance: p.ADAPTIVE_TOLERANCE,
              windowMs: p.ADAPTIVE_WINDOW_MS,
              probeIntervalMs: p.ADAPTIVE_PROBE_INTERVAL_MS,
            },
          }
        : {}),
    };
  }
}
