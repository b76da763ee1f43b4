import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsRegistry } from '../../metrics/metrics.registry.js';
import type { ResiliencePipeline } from '../pipeline.js';

const STATE_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** Turns policy events into Prometheus series; gauges read snapshots at scrape time. */
@Injectable()
export class ResilienceMetrics {
  private readonly pipelines: ResiliencePipeline[] = [];
  private readonly transitions: Counter<'policy' | 'from' | 'to'>;
  private readonly rejections: Counter<'policy' | 'kind'>;
  private readonly retries: Counter<'policy'>;
  private readonly giveUps: Counter<'policy' | 'reason'>;
  private readonly timeouts: Counter<'policy' | 'scope'>;
  private readonly hedges: Counter<'policy'>;
  private readonly hedgeWins: Counter<'policy'>;
  private readonly hedgeSkips: Counter<'policy' | 'reason'>;
  private readonly shared: Counter<'policy' | 'direction'>;
  readonly rateLimited: Counter<'policy' | 'source'>;
  readonly limiterFallbacks: Counter;

  constructor(registry: MetricsRegistry) {
    const pipelines = this.pipelines;
    new Gauge({
      name: 'resilience_breaker_state',
      help: 'Circuit breaker state per policy: 0 closed, 1 half-open, 2 open',
      labelNames: ['policy'] as const,
      registers: [registry],
      // Each cluster worker has its own breakers: the group shows the worst.
      aggregator: 'max',
      collect() {
        for (const p of pipelines) this.set({ policy: p.name }, STATE_VALUE[p.breaker.state]);
      },
    });
    new Gauge({
      name: 'resilience_breaker_failure_ratio',
      help: 'Failure share over the breaker window',
      labelNames: ['policy'] as const,
      registers: [registry],
      aggregator: 'max',
      collect() {
        for (const p of pipelines) this.set({ policy: p.name }, p.breaker.snapshot().failureRatio);
      },
    });
    new Gauge({
      name: 'resilience_bulkhead_active',
      help: 'Calls running inside the bulkhead',
      labelNames: ['policy'] as const,
      registers: [registry],
      collect() {
        for (const p of pipelines) this.set({ policy: p.name }, p.bulkhead.snapshot().active);
      },
    });
    new Gauge({
      name: 'resilience_bulkhead_queued',
      help: 'Calls waiting for a bulkhead slot',
      labelNames: ['policy'] as const,
      registers: [registry],
      collect() {
        for (const p of pipelines) this.set({ policy: p.name }, p.bulkhead.snapshot().queued);
      },
    });
    new Gauge({
      name: 'resilience_retry_budget_used_ratio',
      help: 'Retries as a share of calls over the retry-budget window',
      labelNames: ['policy'] as const,
      registers: [registry],
      aggregator: 'max',
      collect() {
        for (const p of pipelines) {
          const s = p.budget.snapshot();
          this.set({ policy: p.name }, s.calls === 0 ? 0 : s.retries / s.calls);
        }
      },
    });
    new Gauge({
      name: 'resilience_hedge_budget_used_ratio',
      help: 'Hedges as a share of calls over the hedge-budget window',
      labelNames: ['policy'] as const,
      registers: [registry],
      aggregator: 'max',
      collect() {
        for (const p of pipelines) {
          const s = p.hedge?.snapshot();
          if (s !== undefined) this.set({ policy: p.name }, s.budget.ratio);
        }
      },
    });
    new Gauge({
      name: 'resilience_hedge_delay_seconds',
      help: 'Wait before a hedge is sent (fixed, or the recent p95 of answer times)',
      labelNames: ['policy'] as const,
      registers: [registry],
      aggregator: 'average',
      collect() {
        for (const p of pipelines) {
          const delayMs = p.hedge?.delayMs;
          if (delayMs !== undefined) this.set({ policy: p.name }, delayMs / 1000);
        }
      },
    });
    new Gauge({
      name: 'resilience_concurrency_limit',
      help: 'Learnt concurrency limit (CONCURRENCY=adaptive)',
      labelNames: ['policy'] as const,
      registers: [registry],
      collect() {
        for (const p of pipelines)
          if (p.limiter !== undefined) this.set({ policy: p.name }, p.limiter.snapshot().limit);
      },
    });
    new Gauge({
      name: 'resilience_concurrency_in_flight',
      help: 'Calls running under the learnt concurrency limit',
      labelNames: ['policy'] as const,
      registers: [registry],
      collect() {
        for (const p of pipelines) {
          if (p.limiter !== undefined) this.set({ policy: p.name }, p.limiter.snapshot().inFlight);
        }
      },
    });
    new Gauge({
      name: 'resilience_concurrency_noload_latency_seconds',
      help: 'Measured no-load latency the learnt limit compares against',
      labelNames: ['policy'] as const,
      registers: [registry],
      aggregator: 'average',
      collect() {
        for (const p of pipelines) {
          const noLoadMs = p.limiter?.snapshot().noLoadMs;
          if (noLoadMs !== undefined) this.set({ policy: p.name }, noLoadMs / 1000);
        }
      },
    });
    this.hedges = new Counter({
      name: 'resilience_hedges_total',
      help: 'Hedged (second, identical) attempts sent',
      labelNames: ['policy'] as const,
      registers: [registry],
    });
    this.hedgeWins = new Counter({
      name: 'resilience_hedge_wins_total',
      help: 'Hedged attempts that answered first',
      labelNames: ['policy'] as const,
      registers: [registry],
    });
    this.hedgeSkips = new Counter({
      name: 'resilience_hedges_skipped_total',
      help: 'Calls past the hedge delay that got no hedge: budget spent, or breaker not closed',
      labelNames: ['policy', 'reason'] as const,
      registers: [registry],
    });
    this.shared = new Counter({
      name: 'resilience_breaker_shared_total',
      help: 'Breaker transitions shared between instances: published by this one, applied from another',
      labelNames: ['policy', 'direction'] as const,
      registers: [registry],
    });
    this.transitions = new Counter({
      name: 'resilience_breaker_transitions_total',
      help: 'Circuit breaker state changes',
      labelNames: ['policy', 'from', 'to'] as const,
      registers: [registry],
    });
    this.rejections = new Counter({
      name: 'resilience_rejections_total',
      help: 'Calls refused without running: open breaker, full bulkhead, bulkhead queue timeout, concurrency limit',
      labelNames: ['policy', 'kind'] as const,
      registers: [registry],
    });
    this.retries = new Counter({
      name: 'resilience_retries_total',
      help: 'Retries started',
      labelNames: ['policy'] as const,
      registers: [registry],
    });
    this.giveUps = new Counter({
      name: 'resilience_retry_giveups_total',
      help: 'Failures passed on without (further) retry, by reason',
      labelNames: ['policy', 'reason'] as const,
      registers: [registry],
    });
    this.timeouts = new Counter({
      name: 'resilience_timeouts_total',
      help: 'Attempt timeouts and deadline expiries',
      labelNames: ['policy', 'scope'] as const,
      registers: [registry],
    });
    this.rateLimited = new Counter({
      name: 'rate_limit_rejections_total',
      help: 'Requests refused by a token bucket',
      labelNames: ['policy', 'source'] as const,
      registers: [registry],
    });
    this.limiterFallbacks = new Counter({
      name: 'rate_limit_redis_fallbacks_total',
      help: 'Limiter decisions made on the local bucket because Redis did not answer',
      registers: [registry],
    });
  }

  breakerShared(policy: string, direction: 'published' | 'applied'): void {
    this.shared.inc({ policy, direction });
  }

  observe(pipeline: ResiliencePipeline): void {
    const policy = pipeline.name;
    this.pipelines.push(pipeline);
    pipeline.breaker.onStateChange(({ from, to }) => this.transitions.inc({ policy, from, to }));
    pipeline.breaker.onReject(() => this.rejections.inc({ policy, kind: 'breaker_open' }));
    pipeline.bulkhead.onReject(({ reason }) =>
      this.rejections.inc({ policy, kind: reason === 'full' ? 'bulkhead_full' : 'bulkhead_queue_timeout' }),
    );
    pipeline.limiter?.onReject(() => this.rejections.inc({ policy, kind: 'concurrency_limit' }));
    pipeline.hedge?.onHedge(() => this.hedges.inc({ policy }));
    pipeline.hedge?.onHedgeWin(() => this.hedgeWins.inc({ policy }));
    pipeline.hedge?.onHedgeSkipped(({ reason }) => this.hedgeSkips.inc({ policy, reason }));
    pipeline.retry.onRetry(() => this.retries.inc({ policy }));
    pipeline.retry.onGiveUp(({ reason }) => this.giveUps.inc({ policy, reason }));
    pipeline.attemptTimeout.onTimeout(() => this.timeouts.inc({ policy, scope: 'attempt' }));
    pipeline.deadline.onTimeout(() => this.timeouts.inc({ policy, scope: 'deadline' }));
  }
}
