import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PrimaryMessage } from '../metrics/cluster-metrics.protocol.js';
import { MetricsAggregator, type MetricsPeer } from './metrics-aggregator.js';

const TIMEOUT_MS = 2000;

/** A worker with a real registry that answers the aggregator's requests, unless told to stay silent. */
class FakeWorker implements MetricsPeer {
  private static nextPid = 100;
  readonly pid = FakeWorker.nextPid++;
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'http_requests_total',
    help: 'h',
    labelNames: ['route'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'latency_seconds',
    help: 'h',
    buckets: [0.1, 1],
    registers: [this.registry],
  });
  readonly connections = new Gauge({ name: 'chat_connections', help: 'h', registers: [this.registry] });
  readonly breaker = new Gauge({ name: 'breaker_state', help: 'h', aggregator: 'max', registers: [this.registry] });
  readonly heap = new Gauge({ name: 'nodejs_heap_size_used_bytes', help: 'h', registers: [this.registry] });
  readonly started = new Gauge({
    name: 'process_start_time_seconds',
    help: 'h',
    aggregator: 'omit', // as prom-client's default metric has it
    registers: [this.registry],
  });
  silent = false;
  connected = true;
  readonly inbox: PrimaryMessage[] = [];

  constructor(
    readonly slot: number,
    private readonly aggregator: MetricsAggregator,
  ) {
    this.started.set(this.pid);
  }

  send(message: PrimaryMessage): boolean {
    if (!this.connected) return false;
    this.inbox.push(message);
    if (message.type === 'metrics:collect' && !this.silent) void this.answer(message.id);
    return true;
  }

  async answer(id: number): Promise<void> {
    // A copy, as over IPC (prom-client hands out its live sample objects).
    const all = structuredClone(await this.registry.getMetricsAsJSON());
    const perProcess = (name: string) => name.startsWith('nodejs_') || name.startsWith('process_');
    this.aggregator.receive(this, {
      type: 'metrics:collected',
      id,
      shared: all.filter((m) => !perProcess(m.name)),
      perProcess: all.filter((m) => perProcess(m.name)),
    });
  }
}

/** The value of one series in exposition text, or undefined when it is absent. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function setUp(workers: number) {
  const logger = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };
  const aggregator = new MetricsAggregator({ timeoutMs: TIMEOUT_MS, logger });
  const peers = Array.from({ length: workers }, (_, slot) => new FakeWorker(slot, aggregator));
  for (const peer of peers) aggregator.attach(peer);
  return { aggregator, peers, logger };
}

describe('MetricsAggregator', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('sums counters, histograms and gauges, takes each metric’s own aggregator, keeps process metrics per worker', async () => {
    const { aggregator, peers } = setUp(2);
    const [a, b] = peers as [FakeWorker, FakeWorker];
    a.requests.inc({ route: '/users' }, 3);
    b.requests.inc({ route: '/users' }, 4);
    b.requests.inc({ route: '/profiles' });
    a.duration.observe(0.05);
    b.duration.observe(0.5);
    b.duration.observe(5);
    a.connections.set(2);
    b.connections.set(5);
    a.breaker.set(0);
    b.breaker.set(2);
    a.heap.set(1000);
    b.heap.set(2000);

    const text = await aggregator.collect();

    expect(valueOf(text, 'http_requests_total{route="/users"}')).toBe(7);
    expect(valueOf(text, 'http_requests_total{route="/profiles"}')).toBe(1);
    expect(valueOf(text, 'latency_seconds_count')).toBe(3);
    expect(valueOf(text, 'latency_seconds_bucket{le="0.1"}')).toBe(1);
    expect(valueOf(text, 'latency_seconds_bucket{le="1"}')).toBe(2);
    expect(valueOf(text, 'latency_seconds_bucket{le="+Inf"}')).toBe(3);
    expect(valueOf(text, 'latency_seconds_sum')).toBeCloseTo(5.55);
    expect(valueOf(text, 'chat_connections')).toBe(7);
    expect(valueOf(text, 'breaker_state')).toBe(2);
    expect(valueOf(text, 'nodejs_heap_size_used_bytes{worker="0"}')).toBe(1000);
    expect(valueOf(text, 'nodejs_heap_size_used_bytes{worker="1"}')).toBe(2000);
    expect(valueOf(text, 'nodejs_heap_size_used_bytes')).toBeUndefined();
    // 'omit' would drop it when summing; per worker it is kept.
    expect(valueOf(text, 'process_start_time_seconds{worker="1"}')).toBe(b.pid);
    expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(0);
    expect(text.match(/^# TYPE http_requests_total counter$/gm)).toHaveLength(1);
  });

  it('answers a worker’s scrape request with the merged text', async () => {
    const { aggregator, peers } = setUp(2);
    peers[1]!.requests.inc({ route: '/users' }, 2);
    aggregator.receive(peers[0]!, { type: 'metrics:scrape', id: 7 });
    await jest.advanceTimersByTimeAsync(0);
    const answer = peers[0]!.inbox.find((m) => m.type === 'metrics:scraped');
    expect(answer).toMatchObject({ type: 'metrics:scraped', id: 7 });
    expect(
      valueOf(answer?.type === 'metrics:scraped' ? (answer.text ?? '') : '', 'http_requests_total{route="/users"}'),
    ).toBe(2);
  });

  it('ignores messages that are not its own', () => {
    const { aggregator, peers } = setUp(1);
    for (const message of [null, 'text', { type: 'metrics:scrape' }, { cmd: 'NODE_CLUSTER' }]) {
      aggregator.receive(peers[0]!, message);
    }
    expect(peers[0]!.inbox).toEqual([]);
  });

  it('answers after the timeout without a silent worker, its last counters standing in, and logs which', async () => {
    const { aggregator, peers, logger } = setUp(2);
    const [a, b] = peers as [FakeWorker, FakeWorker];
    a.requests.inc({ route: '/users' }, 3);
    b.requests.inc({ route: '/users' }, 4);
    b.duration.observe(0.5);
    b.heap.set(2000);
    await aggregator.collect();

    b.silent = true;
    b.requests.inc({ route: '/users' }, 10); // not seen: b does not answer
    a.requests.inc({ route: '/users' });
    let text: string | undefined;
    void aggregator.collect().then((t) => (text = t));
    await jest.advanceTimersByTimeAsync(TIMEOUT_MS - 1);
    expect(text).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);

    expect(valueOf(text!, 'http_requests_total{route="/users"}')).toBe(4 + 4);
    expect(valueOf(text!, 'latency_seconds_count')).toBe(1);
    expect(valueOf(text!, 'nodejs_heap_size_used_bytes{worker="0"}')).toBeDefined();
    expect(valueOf(text!, 'nodejs_heap_size_used_bytes{worker="1"}')).toBeUndefined();
    expect(valueOf(text!, 'cluster_metrics_missing_workers')).toBe(1);
    expect(logger.warn).toHaveBeenCalledWith(
      { missing: [{ slot: 1, workerPid: b.pid }], timeoutMs: TIMEOUT_MS },
      expect.stringContaining('without some workers'),
    );

    // Its answer to the old request, arriving late, changes nothing.
    const late = b.inbox.filter((m) => m.type === 'metrics:collect').at(-1)!;
    await b.answer(late.id);
    b.silent = false;
    expect(valueOf(await aggregator.collect(), 'http_requests_total{route="/users"}')).toBe(4 + 14);
  });

  it('counts a worker that cannot read its registry as missing, with its last counters', async () => {
    const { aggregator, peers, logger } = setUp(2);
    peers[1]!.requests.inc({ route: '/users' }, 4);
    await aggregator.collect();
    peers[1]!.silent = true;
    const pending = aggregator.collect();
    const request = peers[1]!.inbox.at(-1)!;
    aggregator.receive(peers[1]!, { type: 'metrics:collected', id: request.id, error: 'collect() threw' });
    const text = await pending; // no timeout needed: everyone asked has answered
    expect(valueOf(text, 'http_requests_total{route="/users"}')).toBe(4);
    expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(1);
    expect(logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ slot: 1, error: 'collect() threw' }),
      expect.any(String),
    );
  });

  it('stops waiting for a worker that exits, and keeps its totals once it is gone', async () => {
    const { aggregator, peers } = setUp(2);
    const [a, b] = peers as [FakeWorker, FakeWorker];
    a.requests.inc({ route: '/users' }, 3);
    b.requests.inc({ route: '/users' }, 4);
    b.duration.observe(0.5);
    b.connections.set(5);
    await aggregator.collect();

    b.silent = true;
    const pending = aggregator.collect();
    b.connected = false;
    aggregator.detach(b);
    const text = await pending; // settled by the exit, not by the timeout
    expect(valueOf(text, 'http_requests_total{route="/users"}')).toBe(7);
    expect(valueOf(text, 'latency_seconds_count')).toBe(1);
    expect(valueOf(text, 'chat_connections')).toBe(0); // a gone worker's gauges go with it
    expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(0);

    // Its replacement in the same slot starts from zero; the totals carry on from where they were.
    const replacement = new FakeWorker(1, aggregator);
    aggregator.attach(replacement);
    replacement.requests.inc({ route: '/users' }, 2);
    replacement.requests.inc({ route: '/new' });
    replacement.heap.set(5);
    const after = await aggregator.collect();
    expect(valueOf(after, 'http_requests_total{route="/users"}')).toBe(9);
    expect(valueOf(after, 'http_requests_total{route="/new"}')).toBe(1);
    expect(valueOf(after, 'latency_seconds_count')).toBe(1);
    expect(valueOf(after, 'nodejs_heap_size_used_bytes{worker="1"}')).toBe(5);
    expect(valueOf(after, `process_start_time_seconds{worker="1"}`)).toBe(replacement.pid);
  });

  it('does not count twice a worker that answered and then exited within one round', async () => {
    const { aggregator, peers } = setUp(2);
    const [a, b] = peers as [FakeWorker, FakeWorker];
    b.requests.inc({ route: '/users' }, 4);
    a.silent = true;
    const pending = aggregator.collect();
    await jest.advanceTimersByTimeAsync(0); // b has answered
    aggregator.detach(b);
    await jest.advanceTimersByTimeAsync(TIMEOUT_MS);
    expect(valueOf(await pending, 'http_requests_total{route="/users"}')).toBe(4);
  });

  it('answers at once when no worker listens yet, and never asks a worker before it listens', async () => {
    const logger = { info: jest.fn(), warn: jest.fn(), error: jest.fn() };
    const aggregator = new MetricsAggregator({ timeoutMs: TIMEOUT_MS, logger });
    const starting = new FakeWorker(0, aggregator);
    const text = await aggregator.collect();
    expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(0);
    expect(starting.inbox).toEqual([]);
  });
});
