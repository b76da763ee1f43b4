import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry.js';
import { NOTIFICATION_STATUSES } from './notification.js';
import { NotificationsRepository } from './notifications.repository.js';

export type FailureKind = 'transient' | 'permanent' | 'dead';

/** renewed: a claim extended; lost: found taken at renewal; lapsing: not renewed in time. Both of the latter abort the send. */
export type LeaseOutcome = 'renewed' | 'lost' | 'lapsing';

/** Notification queue and delivery metrics; the queue depth is one COUNT … GROUP BY per scrape. */
@Injectable()
export class NotificationsMetrics {
  readonly delivered: Counter;
  readonly failures: Counter<'kind'>;
  readonly attempts: Counter;
  readonly latency: Histogram;
  readonly leases: Counter<'outcome'>;

  constructor(registry: MetricsRegistry, repository: NotificationsRepository) {
    new Gauge({
      name: 'notifications_queue_depth',
      help: 'Notifications by state (queued, sending, delivered, failed), read at scrape time',
      labelNames: ['state'],
      registers: [registry],
      // Every cluster worker counts the same table: the group reports it once, not once per worker.
      aggregator: 'max',
      async collect() {
        try {
          const counts = await repository.countByStatus();
          for (const state of NOTIFICATION_STATUSES) this.set({ state }, counts[state]);
        } catch {
          // The database is away: keep the last values rather than failing the whole scrape.
        }
      },
    });
    this.delivered = new Counter({
      name: 'notifications_delivered_total',
      help: 'Notifications delivered',
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'notifications_failures_total',
      help: 'Failed delivery attempts by kind: transient (will retry), permanent (refused), dead (retries exhausted)',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.attempts = new Counter({
      name: 'notifications_attempts_total',
      help: 'Delivery attempts started',
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'notifications_delivery_latency_seconds',
      help: 'Time from enqueue to delivery',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    });
    this.leases = new Counter({
      name: 'notifications_leases_total',
      help:
        'Claims of sends in hand, by outcome: renewed (lease extended), lost (another worker holds it now) or ' +
        'lapsing (could not be renewed before it ran out); lost and lapsing sends are aborted',
      labelNames: ['outcome'],
      registers: [registry],
    });
    for (const kind of ['transient', 'permanent', 'dead'] satisfies FailureKind[]) this.failures.inc({ kind }, 0);
    for (const outcome of ['renewed', 'lost', 'lapsing'] satisfies LeaseOutcome[]) this.leases.inc({ outcome }, 0);
  }
}
