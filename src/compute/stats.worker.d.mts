// Types of stats.worker.mjs (plain JavaScript so the worker threads of tests and dist load the same file).

export declare const MAX_VALUES: number;
export declare const HISTOGRAM_BUCKETS: number;

export interface HistogramBucket {
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

export interface Stats {
  readonly count: number;
  readonly sum: number;
  readonly mean: number;
  /** Population standard deviation. */
  readonly stdDev: number;
  readonly min: number;
  readonly max: number;
  /** Nearest rank: the value at rank ceil(p/100 * count) of the sorted values. */
  readonly percentiles: { readonly p50: number; readonly p95: number; readonly p99: number };
  readonly histogram: { readonly buckets: readonly HistogramBucket[] };
}

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export type Rejection = {
  readonly ok: false;
  readonly reason: 'invalid_json' | 'validation_failed';
  readonly errors: readonly FieldError[];
};
export type StatsResult = { readonly ok: true; readonly stats: Stats } | Rejection;

export declare function computeStats(values: readonly number[]): Stats;
export declare function validateBody(body: unknown): { readonly ok: true; readonly values: number[] } | Rejection;
export declare function processBytes(bytes: Uint8Array): StatsResult;
export default function run(task: { buffer: ArrayBuffer }): StatsResult;
