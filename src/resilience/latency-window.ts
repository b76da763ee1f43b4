/** Options of {@link LatencyWindow}. */
export interface LatencyWindowOptions {
  /** The quantile to track, 0 < q < 1 (0.95: the p95). */
  readonly quantile: number;
  /** Latest samples kept, default 512: the window slides by count, not time. */
  readonly size?: number;
  /** Samples needed before there is an estimate; default 20. */
  readonly minSamples?: number;
  /** The estimate is recomputed after this many new samples; default 32. */
  readonly recomputeEvery?: number;
}

/**
 * A quantile of the most recent latencies, for a hedge delay that follows the
 * dependency ("send the second request after the p95"). The samples live in a
 * fixed ring, and the estimate is recomputed (a sort of at most `size`
 * numbers) every `recomputeEvery` samples, so a sample costs a store and,
 * amortised, a fraction of a sort.
 *
 * @example
 * const p95 = new LatencyWindow({ quantile: 0.95 });
 * p95.record(12.5);
 * const delayMs = p95.estimate(); // undefined until 20 samples
 * @publicApi
 */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private readonly quantile: number;
  private readonly minSamples: number;
  private readonly recomputeEvery: number;
  private count = 0;
  private next = 0;
  private sinceRecompute = 0;
  private cached: number | undefined;

  constructor(options: LatencyWindowOptions) {
    const { quantile, size = 512, minSamples = 20, recomputeEvery = 32 } = options;
    if (!(quantile > 0 && quantile < 1))
      throw new RangeError(`quantile must be within (0, 1), got ${String(quantile)}`);
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be an integer >= 1, got ${String(size)}`);
    if (!Number.isInteger(minSamples) || minSamples < 1 || minSamples > size) {
      throw new RangeError(`minSamples must be an integer within 1..size, got ${String(minSamples)}`);
    }
    if (!Number.isInteger(recomputeEvery) || recomputeEvery < 1) {
      throw new RangeError(`recomputeEvery must be an integer >= 1, got ${String(recomputeEvery)}`);
    }
    this.samples = new Float64Array(size);
    this.quantile = quantile;
    this.minSamples = minSamples;
    this.recomputeEvery = recomputeEvery;
  }

  /** Adds one latency in ms (negative or non-finite values are ignored). */
  record(ms: number): void {
    if (!(ms >= 0 && ms < Infinity)) return;
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
    // The first estimate comes as soon as there are enough samples, later ones every recomputeEvery.
    if (++this.sinceRecompute >= this.recomputeEvery || (this.cached === undefined && this.count >= this.minSamples)) {
      this.recompute();
    }
  }

  /** The quantile of the kept samples (linear interpolation), or undefined with too few of them. */
  estimate(): number | undefined {
    return this.cached;
  }

  /** Samples currently kept. */
  get size(): number {
    return this.count;
  }

  private recompute(): void {
    this.sinceRecompute = 0;
    if (this.count < this.minSamples) return;
    const sorted = this.samples.slice(0, this.count).sort();
    const position = this.quantile * (this.count - 1);
    const below = Math.floor(position);
    const low = sorted[below] ?? 0;
    const high = sorted[Math.min(below + 1, this.count - 1)] ?? low;
    this.cached = low + (high - low) * (position - below);
  }
}
