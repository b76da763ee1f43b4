import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per app instance (not prom-client's global one), so
 * several apps in one test process never collide. Modules add their metrics here.
 */
export class MetricsRegistry extends Registry {
  static create(): MetricsRegistry {
    const registry = new MetricsRegistry();
    collectDefaultMetrics({ register: registry });
    return registry;
  }
}
