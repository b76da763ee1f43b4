import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { EventEmitter } from 'node:events';
import { Counter } from 'prom-client';
import { AppException } from '../common/errors/app.exception.js';
import type { CollectAnswer, WorkerMessage } from './cluster-metrics.protocol.js';
import { ClusterMetricsSource, type PrimaryChannel } from './cluster-metrics.source.js';
import { MetricsRegistry } from './metrics.registry.js';

/** The worker's end of the IPC channel; `sent` is what reached the primary. */
class FakeChannel extends EventEmitter implements PrimaryChannel {
  connected = true;
  failSends = false;
  readonly sent: WorkerMessage[] = [];

  send(message: WorkerMessage, failed: (error: Error) => void): void {
    if (this.failSends) {
      void Promise.resolve().then(() => failed(new Error('channel closed')));
      return;
    }
    this.sent.push(message);
  }

  /** A message from the primary. */
  deliver(message: unknown): void {
    this.emit('message', message);
  }
}

const WAIT_MS = 3000;

function setUp() {
  const registry = MetricsRegistry.create();
  new Counter({ name: 'http_requests_total', help: 'h', registers: [registry] }).inc(3);
  const channel = new FakeChannel();
  const source = new ClusterMetricsSource(registry, channel, WAIT_MS);
  source.onModuleInit();
  return { registry, channel, source };
}

describe('ClusterMetricsSource', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('asks the primary and answers with its text', async () => {
    const { channel, source } = setUp();
    const scrape = source.scrape();
    expect(channel.sent).toEqual([{ type: 'metrics:scrape', id: 0 }]);
    channel.deliver({ type: 'metrics:scraped', id: 1, text: 'someone else’s' });
    channel.deliver({ type: 'metrics:scraped', id: 0, text: 'whole group' });
    await expect(scrape).resolves.toBe('whole group');
  });

  it('answers the primary’s request with its registry, the default metrics apart', async () => {
    const { channel } = setUp();
    channel.deliver({ type: 'metrics:collect', id: 5 });
    await jest.advanceTimersByTimeAsync(0);
    const answer = channel.sent[0] as CollectAnswer;
    expect(answer).toMatchObject({ type: 'metrics:collected', id: 5 });
    expect(answer.shared?.map((m) => m.name)).toEqual(['http_requests_total']);
    expect(answer.perProcess?.map((m) => m.name)).toEqual(
      expect.arrayContaining([
        'nodejs_heap_size_used_bytes',
        'process_resident_memory_bytes',
        'nodejs_gc_duration_seconds',
      ]),
    );
    // What goes over the channel survives V8 serialization (no functions, no live objects).
    expect(() => structuredClone(answer)).not.toThrow();
  });

  it('is a 503 when the primary does not answer in time', async () => {
    const { source } = setUp();
    const scrape = source.scrape();
    const settled = expect(scrape).rejects.toMatchObject({ code: 'service_unavailable' });
    await jest.advanceTimersByTimeAsync(WAIT_MS);
    await settled;
    expect(jest.getTimerCount()).toBe(0);
  });

  it('is a 503 at once when the channel is closed or a send fails', async () => {
    const { channel, source } = setUp();
    channel.failSends = true;
    await expect(source.scrape()).rejects.toBeInstanceOf(AppException);
    channel.connected = false;
    await expect(source.scrape()).rejects.toMatchObject({ status: 503 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('is a 503 when the primary could not merge the metrics', async () => {
    const { channel, source } = setUp();
    const scrape = source.scrape();
    channel.deliver({ type: 'metrics:scraped', id: 0, error: 'boom' });
    await expect(scrape).rejects.toMatchObject({ code: 'service_unavailable' });
  });

  it('stops listening at shutdown', () => {
    const { channel, source } = setUp();
    source.onApplicationShutdown();
    expect(channel.listenerCount('message')).toBe(0);
  });
});
