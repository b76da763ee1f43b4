import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry.js';

@Injectable()
export class StreamMetrics {
  readonly subscribers: Gauge;
  readonly eventsSent: Counter;
  readonly replayed: Counter;
  readonly dropped: Counter;

  constructor(registry: MetricsRegistry) {
    this.subscribers = new Gauge({ name: 'sse_subscribers', help: 'Open SSE streams', registers: [registry] });
    this.eventsSent = new Counter({
      name: 'sse_events_sent_total',
      help: 'SSE messages written',
      registers: [registry],
    });
    this.replayed = new Counter({
      name: 'sse_replayed_events_total',
      help: 'Events sent from the replay buffer on Last-Event-ID resume',
      registers: [registry],
    });
    this.dropped = new Counter({
      name: 'sse_dropped_clients_total',
      help: 'SSE clients disconnected because they could not keep up',
      registers: [registry],
    });
  }
}
