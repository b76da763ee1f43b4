import { AggregatorRegistry, Gauge } from 'prom-client';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import {
  isMessage,
  type CollectAnswer,
  type MetricJson,
  type PrimaryMessage,
  type ScrapeAnswer,
} from '../metrics/cluster-metrics.protocol.js';
import type { SupervisorLogger } from './worker-supervisor.js';

/** One worker as the aggregator sees it (node:cluster's Worker in production, a fake in tests). */
export interface MetricsPeer {
  /** The supervisor's slot: the `worker` label, stable across restarts of that slot. */
  readonly slot: number;
  readonly pid: number | undefined;
  /** False when the message cannot go out (the channel is closed). */
  send(message: PrimaryMessage): boolean;
}

export interface MetricsAggregatorOptions {
  readonly timeoutMs: number;
  readonly logger: SupervisorLogger;
}

interface Registries {
  readonly shared: readonly MetricJson[];
  readonly perProcess: readonly MetricJson[];
}

interface Collection {
  /** Asked and not answered yet. */
  readonly asked: Set<MetricsPeer>;
  readonly answers: Map<MetricsPeer, Registries>;
  settle(): void;
}

type Sample = MetricJson['values'][number];

/**
 * The cluster primary's half of `/metrics`: asks every listening worker for
 * its registry and merges them with prom-client's AggregatorRegistry. Counters
 * and histograms are summed, gauges by each metric's `aggregator` (sum unless
 * it says otherwise); the default metrics of each process (heap, event loop,
 * CPU, GC…) stay apart under a `worker` label. Summed totals never go back: a
 * worker that misses the timeout counts with its last answer, and one that
 * exits leaves its last answer behind in the totals.
 */
export class MetricsAggregator {
  private readonly listening = new Set<MetricsPeer>();
  /** Each worker's counters and histograms as it last answered. */
  private readonly lastTotals = new Map<MetricsPeer, readonly MetricJson[]>();
  /** The last counters and histograms of workers that have exited, summed. */
  private retired: readonly MetricJson[] = [];
  private readonly collections = new Map<number, Collection>();
  private nextId = 0;

  constructor(private readonly options: MetricsAggregatorOptions) {}

  /** The worker listens (so it has the handler for our requests): ask it from now on. */
  attach(peer: MetricsPeer): void {
    this.listening.add(peer);
  }

  /** The worker exited: stop waiting for it and keep its last totals. */
  detach(peer: MetricsPeer): void {
    this.listening.delete(peer);
    for (const collection of this.collections.values()) {
      // Its totals move to `retired` below; an answer it gave in this round would count them twice.
      collection.answers.delete(peer);
      if (collection.asked.delete(peer) && collection.asked.size === 0) collection.settle();
    }
    const last = this.lastTotals.get(peer);
    this.lastTotals.delete(peer);
    if (last !== undefined) this.retired = sumTotals([...this.retired, ...last]);
  }

  /** A message from a worker; anything that is not ours is ignored. */
  receive(peer: MetricsPeer, message: unknown): void {
    if (isMessage(message, 'metrics:scrape')) {
      fireAndForget(this.answerScrape(peer, message.id), this.options.logger, 'cluster metrics scrape');
    } else if (isMessage(message, 'metrics:collected')) {
      this.collected(peer, message);
    }
  }

  /** The whole group's exposition text, after every worker answered or the timeout passed. */
  async collect(): Promise<string> {
    const id = this.nextId++;
    const peers = [...this.listening];
    let settle = (): void => {};
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const collection: Collection = { asked: new Set(), answers: new Map(), settle };
    this.collections.set(id, collection);
    for (const peer of peers) {
      if (peer.send({ type: 'metrics:collect', id })) collection.asked.add(peer);
    }
    if (collection.asked.size === 0) settle();
    const timer = setTimeout(settle, this.options.timeoutMs);
    try {
      await settled;
    } finally {
      clearTimeout(timer);
      this.collections.delete(id);
    }
    const missing = peers.filter((p) => this.listening.has(p) && !collection.answers.has(p));
    if (missing.length > 0) {
      this.options.logger.warn(
        { missing: missing.map((p) => ({ slot: p.slot, workerPid: p.pid })), timeoutMs: this.options.timeoutMs },
        'cluster: metrics scrape answered without some workers (their last counters stand in)',
      );
    }
    return this.render(collection.answers, missing);
  }

  private async answerScrape(peer: MetricsPeer, id: number): Promise<void> {
    let answer: ScrapeAnswer;
    try {
      answer = { type: 'metrics:scraped', id, text: await this.collect() };
    } catch (error) {
      this.options.logger.error({ err: error }, 'cluster: metrics could not be merged');
      answer = { type: 'metrics:scraped', id, error: error instanceof Error ? error.message : String(error) };
    }
    peer.send(answer);
  }

  private collected(peer: MetricsPeer, message: CollectAnswer): void {
    const collection = this.collections.get(message.id);
    // A late answer (after the timeout) or one from a worker that was not asked.
    if (collection === undefined || !collection.asked.delete(peer)) return;
    if (message.shared === undefined || message.perProcess === undefined) {
      this.options.logger.warn(
        { slot: peer.slot, workerPid: peer.pid, error: message.error },
        'cluster: a worker could not read its metrics',
      );
    } else {
      collection.answers.set(peer, { shared: message.shared, perProcess: message.perProcess });
      this.lastTotals.set(peer, message.shared.filter(isTotal));
    }
    if (collection.asked.size === 0) collection.settle();
  }

  private async render(answers: ReadonlyMap<MetricsPeer, Registries>, missing: readonly MetricsPeer[]) {
    const parts: (readonly MetricJson[])[] = [this.retired];
    for (const [peer, { shared, perProcess }] of answers) {
      parts.push(
        shared,
        perProcess.map((metric) => withLabel(metric, 'worker', String(peer.slot))),
      );
    }
    for (const peer of missing) parts.push(this.lastTotals.get(peer) ?? []);
    const registry = AggregatorRegistry.aggregate(parts);
    new Gauge({
      name: 'cluster_metrics_missing_workers',
      help: 'Workers that did not answer this scrape in time (their last counters stand in, their gauges are absent)',
      registers: [registry],
    }).set(missing.length);
    return registry.metrics();
  }
}

/** Counters and histograms: what a summed total must keep when its worker is gone. */
const isTotal = (metric: MetricJson): boolean => ['counter', 'histogram'].includes(String(metric.type));

/** One process's series, told apart from the other workers' by a label (so merging keeps each as is). */
function withLabel(metric: MetricJson, name: string, value: string): MetricJson {
  return {
    ...metric,
    aggregator: 'first',
    values: metric.values.map((sample) => ({ ...sample, labels: { ...sample.labels, [name]: value } })),
  };
}

/** Identity of one sample: its name (a histogram has _bucket, _sum, _count) and labels. */
function seriesKey(sample: Sample): string {
  const name = (sample as { metricName?: string }).metricName ?? '';
  const labels = Object.entries(sample.labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([label, value]) => `${label}=${String(value)}`);
  return `${name}{${labels.join(',')}}`;
}

/** Counters and histograms added up by series. */
function sumTotals(metrics: readonly MetricJson[]): MetricJson[] {
  const byName = new Map<string, { readonly metric: MetricJson; readonly samples: Map<string, Sample> }>();
  for (const metric of metrics) {
    let entry = byName.get(metric.name);
    if (entry === undefined) {
      entry = { metric, samples: new Map() };
      byName.set(metric.name, entry);
    }
    for (const sample of metric.values) {
      const key = seriesKey(sample);
      const sum = entry.samples.get(key);
      entry.samples.set(key, sum === undefined ? sample : { ...sum, value: sum.value + sample.value });
    }
  }
  return [...byName.values()].map(({ metric, samples }) => ({ ...metric, values: [...samples.values()] }));
}
