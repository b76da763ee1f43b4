import { Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { TimeoutError, withTimeout } from '../common/async/with-timeout.js';
import { AppException } from '../common/errors/app.exception.js';
import { isMessage, SCRAPE_WAIT_MS, type MetricJson, type WorkerMessage } from './cluster-metrics.protocol.js';
import type { MetricsRegistry } from './metrics.registry.js';
import { MetricsSource } from './metrics.source.js';

/** The IPC channel to the cluster primary (`process` in a worker; a fake in unit tests). */
export interface PrimaryChannel {
  readonly connected: boolean;
  /** Sends a message; a failure (the channel closed) is reported to `failed`, never thrown. */
  send(message: WorkerMessage, failed: (error: Error) => void): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** The worker's own `process` as its channel to the primary. */
export const processChannel = (): PrimaryChannel => ({
  get connected() {
    return process.connected;
  },
  send: (message, failed) => {
    // With a callback a closed channel is an error passed to it, not an 'error' event on process.
    process.send?.(message, undefined, undefined, (error: Error | null) => {
      if (error !== null) failed(error);
    });
  },
  on: (event, listener) => process.on(event, listener),
  off: (event, listener) => process.off(event, listener),
});

const UNAVAILABLE = 'The cluster primary did not answer with the workers’ metrics; retry shortly';

/**
 * `/metrics` in a cluster worker: the scrape is passed to the primary, which
 * gathers every worker's registry and answers with the merged exposition.
 * Answers the primary's own requests for this worker's registry too.
 */
export class ClusterMetricsSource extends MetricsSource implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ClusterMetricsSource.name);
  private readonly waiting = new Map<number, (answer: { text?: string; error?: string }) => void>();
  private nextId = 0;

  constructor(
    private readonly registry: MetricsRegistry,
    private readonly channel: PrimaryChannel,
    private readonly waitMs = SCRAPE_WAIT_MS,
  ) {
    super();
  }

  onModuleInit(): void {
    this.channel.on('message', this.onMessage);
  }

  onApplicationShutdown(): void {
    this.channel.off('message', this.onMessage);
  }

  async scrape(): Promise<string> {
    if (!this.channel.connected) throw new AppException('service_unavailable', UNAVAILABLE);
    const id = this.nextId++;
    const answer = new Promise<{ text?: string; error?: string }>((resolve) => {
      this.waiting.set(id, resolve);
      this.channel.send({ type: 'metrics:scrape', id }, (error) => resolve({ error: error.message }));
    });
    try {
      const { text, error } = await withTimeout(answer, this.waitMs, 'cluster metrics');
      if (text !== undefined) return text;
      this.logger.warn({ error }, 'cluster metrics: the primary could not gather them');
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      this.logger.warn({ waitMs: this.waitMs }, 'cluster metrics: the primary did not answer in time');
    } finally {
      this.waiting.delete(id);
    }
    throw new AppException('service_unavailable', UNAVAILABLE, { headers: { 'retry-after': '1' } });
  }

  private readonly onMessage = (message: unknown): void => {
    if (isMessage(message, 'metrics:collect')) {
      fireAndForget(this.answer(message.id), this.logger, 'answering the primary’s metrics request');
    } else if (isMessage(message, 'metrics:scraped')) {
      this.waiting.get(message.id)?.(message);
    }
  };

  private async answer(id: number): Promise<void> {
    let reply: WorkerMessage;
    try {
      const shared: MetricJson[] = [];
      const perProcess: MetricJson[] = [];
      for (const metric of await this.registry.getMetricsAsJSON()) {
        (this.registry.isPerProcess(metric.name) ? perProcess : shared).push(metric);
      }
      reply = { type: 'metrics:collected', id, shared, perProcess };
    } catch (error) {
      reply = { type: 'metrics:collected', id, error: error instanceof Error ? error.message : String(error) };
    }
    this.channel.send(reply, (err) => {
      this.logger.warn({ err }, 'cluster metrics: could not answer the primary');
    });
  }
}
