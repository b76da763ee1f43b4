import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { Counter, Gauge } from 'prom-client';
import { AppException } from '../common/errors/app.exception.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsRegistry } from '../metrics/metrics.registry.js';
import type { StatsResult } from './stats.worker.mjs';

/** Seconds a caller turned away by a full pool is asked to wait. */
const RETRY_AFTER_S = 1;
// piscina's own rejections when its queue is full (a backstop: the count below rejects first).
const PISCINA_FULL = /^(Task queue is at limit|No task queue available)/;

/** Threads for a configured size: 0 means one less than the cores, at least 1. */
export function poolThreads(configured: number): number {
  return configured > 0 ? configured : Math.max(1, availableParallelism() - 1);
}

/**
 * The worker-thread pool (piscina) that runs CPU-bound work off the event
 * loop. At most `threads` tasks run and `WORKER_POOL_MAX_QUEUE` wait; past
 * that, work is refused at once with 503 `overloaded` before anything is sent
 * to a worker.
 */
@Injectable()
export class ComputePool implements OnApplicationShutdown {
  private readonly pool: Piscina<{ buffer: ArrayBuffer }, StatsResult>;
  private readonly threads: number;
  private readonly maxQueue: number;
  /** Tasks handed to piscina and not yet settled: running plus waiting. */
  private inFlight = 0;
  private readonly rejections: Counter;

  constructor(config: AppConfig, registry: MetricsRegistry) {
    this.threads = poolThreads(config.workerPool.size);
    this.maxQueue = config.workerPool.maxQueue;
    this.pool = new Piscina({
      filename: new URL('./stats.worker.mjs', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      maxQueue: this.maxQueue,
      idleTimeout: 60_000,
    });
    this.rejections = this.registerMetrics(registry);
  }

  /** Parses, validates and summarises a JSON body on a worker; the bytes are moved there, not copied. */
  async processData(body: Buffer): Promise<StatsResult> {
    if (this.inFlight >= this.threads + this.maxQueue) throw this.overloaded();
    const buffer = ownedArrayBuffer(body);
    this.inFlight++;
    try {
      return await this.pool.run({ buffer }, { transferList: [buffer] });
    } catch (error) {
      if (error instanceof Error && PISCINA_FULL.test(error.message)) throw this.overloaded();
      throw error;
    } finally {
      this.inFlight--;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.destroy();
  }

  private overloaded(): AppException {
    this.rejections.inc();
    return new AppException('overloaded', 'The compute pool is busy; retry later', {
      headers: { 'retry-after': String(RETRY_AFTER_S) },
    });
  }

  private registerMetrics(registry: MetricsRegistry): Counter {
    const read = (pick: () => number) =>
      function (this: Gauge) {
        this.set(pick());
      };
    new Gauge({
      name: 'worker_pool_utilization',
      help: 'Share of the pool thread time spent running tasks since start (0..1, piscina)',
      registers: [registry],
      // A share, so across cluster workers (each with its own pool) their mean.
      aggregator: 'average',
      collect: read(() => this.pool.utilization),
    });
    new Gauge({
      name: 'worker_pool_queue_size',
      help: 'Tasks waiting for a worker thread',
      registers: [registry],
      collect: read(() => this.pool.queueSize),
    });
    new Gauge({
      name: 'worker_pool_running_tasks',
      help: 'Tasks running on a worker thread',
      registers: [registry],
      collect: read(() => Math.max(0, this.inFlight - this.pool.queueSize)),
    });
    new Gauge({
      name: 'worker_pool_completed_tasks',
      help: 'Tasks completed by the pool since start',
      registers: [registry],
      collect: read(() => this.pool.completed),
    });
    new Gauge({
      name: 'worker_pool_threads',
      help: 'Configured worker threads',
      registers: [registry],
      collect: read(() => this.threads),
    });
    return new Counter({
      name: 'worker_pool_rejections_total',
      help: 'Tasks refused because the pool queue was full (503 overloaded)',
      registers: [registry],
    });
  }
}

/**
 * An ArrayBuffer holding exactly these bytes that may be transferred. A large
 * body owns its buffer and is moved as is; a small one may sit in Node's shared
 * Buffer pool, which must never be detached, so it is copied (cheaply).
 */
function ownedArrayBuffer(body: Buffer): ArrayBuffer {
  const backing = body.buffer;
  if (backing instanceof ArrayBuffer && body.byteOffset === 0 && body.byteLength === backing.byteLength) {
    return backing;
  }
  const copy = new ArrayBuffer(body.byteLength);
  new Uint8Array(copy).set(body);
  return copy;
}
