import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { MetricsRegistry } from './metrics.registry.js';

const UNMATCHED_ROUTE = '(unmatched)';

type Label = 'method' | 'route' | 'status';

/**
 * RED metrics per route template (never the raw URL, so ids do not explode
 * label cardinality), recorded from Fastify's own hooks.
 */
export function registerHttpMetrics(fastify: FastifyInstance, registry: MetricsRegistry): void {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests being served',
    registers: [registry],
  });

  // One bound child per (method, route, status): prom-client then skips hashing the labels per request.
  // Route templates and statuses are few, so this stays small.
  const series = new Map<
    string,
    { readonly duration: Histogram.Internal<Label>; readonly requests: Counter.Internal }
  >();
  const seriesOf = (method: string, route: string, status: number) => {
    const key = `${method} ${route} ${String(status)}`;
    let entry = series.get(key);
    if (entry === undefined) {
      const labels = { method, route, status: String(status) };
      entry = { duration: duration.labels(labels), requests: requests.labels(labels) };
      series.set(key, entry);
    }
    return entry;
  };

  fastify.addHook('onRequest', (request, _reply, done) => {
    inFlight.inc();
    // 'close' fires exactly once, also when the client goes away mid-request.
    request.raw.once('close', () => {
      inFlight.dec();
    });
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const entry = seriesOf(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode);
    entry.duration.observe(reply.elapsedTime / 1000);
    entry.requests.inc();
    done();
  });
}
