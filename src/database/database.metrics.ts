import { Gauge } from 'prom-client';
import type { MetricsRegistry } from '../metrics/metrics.registry.js';
import type { Database } from './database.js';

/** Pool gauges read at scrape time, so they cost nothing between scrapes. */
export function registerDatabaseMetrics(registry: MetricsRegistry, database: Database): void {
  const read = (pick: (pool: NonNullable<Database['pool']>) => number) =>
    function (this: Gauge) {
      const pool = database.pool;
      this.set(pool === undefined ? 0 : pick(pool));
    };
  new Gauge({
    name: 'db_pool_connections',
    help: 'Connections open in the database pool',
    registers: [registry],
    collect: read((p) => p.totalCount),
  });
  new Gauge({
    name: 'db_pool_idle_connections',
    help: 'Idle connections in the database pool',
    registers: [registry],
    collect: read((p) => p.idleCount),
  });
  new Gauge({
    name: 'db_pool_waiting_requests',
    help: 'Queries waiting for a pool connection',
    registers: [registry],
    collect: read((p) => p.waitingCount),
  });
  new Gauge({
    name: 'db_pool_max_connections',
    help: 'Configured pool size',
    registers: [registry],
    collect: read((p) => p.options.max),
  });
}
