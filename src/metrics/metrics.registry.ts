import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per app instance (not prom-client's global one), so
 * several apps in one test process never collide. Modules add their metrics here.
 */
export class MetricsRegistry extends Registry {
  /** The default metrics (heap, event loop, CPU, GC…): figures of this one process, never summed with another's. */
  private readonly processMetrics = new Set<string>();

  static create(): MetricsRegistry {
    const registry = new MetricsRegistry();
    collectDefaultMetrics({ register: registry });
    // prom-client's per-type totals are gauges named *_total, which `promtool check
    // metrics` rejects; each equals the sum of its by-type gauge (nodejs_active_handles …).
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      registry.removeSingleMetric(name);
    }
    for (const metric of registry.getMetricsAsArray()) registry.processMetrics.add(metric.name);
    return registry;
  }

  /** Whether `name` describes this process itself (cluster mode keeps such a series per worker). */
  isPerProcess(name: string): boolean {
    return this.processMetrics.has(name);
  }
}
