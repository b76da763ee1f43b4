import type { Registry } from 'prom-client';

/*
 * The IPC messages of cluster-wide /metrics. A worker that receives a scrape
 * asks the primary (`scrape`); the primary asks every listening worker for its
 * registry (`collect`), merges the answers (`collected`) and hands the
 * exposition text back (`scraped`).
 */

/** One metric as `Registry.getMetricsAsJSON()` gives it (what AggregatorRegistry.aggregate takes). */
export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/** How long the primary waits for the workers' registries before it answers with what came. */
export const COLLECT_TIMEOUT_MS = 2000;
/** How long a worker waits for the primary's answer: its collection, plus a margin for the IPC. */
export const SCRAPE_WAIT_MS = COLLECT_TIMEOUT_MS + 1000;

/** Worker → primary: a scrape arrived here; answer with the whole group's metrics. */
export interface ScrapeRequest {
  readonly type: 'metrics:scrape';
  readonly id: number;
}

/** Primary → the worker that asked: the exposition text, or why there is none. */
export interface ScrapeAnswer {
  readonly type: 'metrics:scraped';
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

/** Primary → every listening worker: send your registry. */
export interface CollectRequest {
  readonly type: 'metrics:collect';
  readonly id: number;
}

/** Worker → primary: its registry, split into what is summed and what stays per worker. */
export interface CollectAnswer {
  readonly type: 'metrics:collected';
  readonly id: number;
  readonly shared?: MetricJson[];
  readonly perProcess?: MetricJson[];
  readonly error?: string;
}

export type WorkerMessage = ScrapeRequest | CollectAnswer;
export type PrimaryMessage = CollectRequest | ScrapeAnswer;

type Message = WorkerMessage | PrimaryMessage;

/** Narrows an IPC message of unknown origin to one of ours, by its type. */
export function isMessage<T extends Message['type']>(
  message: unknown,
  type: T,
): message is Extract<Message, { type: T }> {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === type &&
    typeof (message as { id?: unknown }).id === 'number'
  );
}
