export interface RestartPolicyOptions {
  /** Delay before restarting after a first crash; it doubles with each further crash inside the window. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** This many crashes of one worker within `windowMs` is a crash loop: it is not restarted again. */
  readonly maxCrashes: number;
  readonly windowMs: number;
}

/** 0.1 s, 0.2 s, 0.4 s, 0.8 s, then a fifth crash within a minute gives up. */
export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  baseDelayMs: 100,
  maxDelayMs: 5000,
  maxCrashes: 5,
  windowMs: 60_000,
};

/**
 * The crash history of one worker slot: how long to wait before restarting
 * it, and when to stop trying. A worker that keeps dying (a bad deploy, a
 * dependency gone at boot) must not be restarted forever while the service
 * looks up: the primary gives up and exits non-zero so the orchestrator sees it.
 */
export class RestartPolicy {
  private crashes: number[] = [];

  constructor(
    private readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a crash now: the delay before the restart, or `undefined` for a crash loop. */
  onCrash(): number | undefined {
    const now = this.now();
    this.crashes = this.crashes.filter((at) => now - at < this.options.windowMs);
    this.crashes.push(now);
    if (this.crashes.length >= this.options.maxCrashes) return undefined;
    return Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (this.crashes.length - 1));
  }
}
