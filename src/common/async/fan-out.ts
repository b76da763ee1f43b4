import type { ErrorSink } from './fire-and-forget.js';

interface Job {
  readonly targets: readonly unknown[];
  readonly send: (target: unknown) => void;
  next: number;
}

/** Sends between two looks at the clock. */
const CLOCK_EVERY = 64;

/**
 * Delivers one thing to many targets without holding the event loop: a
 * fan-out runs for at most `sliceMs` at a time, then yields (setImmediate)
 * so probes, requests and other sockets get their turn, and carries on.
 * Fan-outs run in the order they were asked for, so each target sees them
 * in that order; a small one with nothing queued before it runs at once.
 */
export class FanOut {
  private readonly jobs: Job[] = [];
  private scheduled = false;

  constructor(
    private readonly logger: ErrorSink,
    private readonly sliceMs = 4,
    /** Fan-outs up to this size, with nothing queued, run in the caller's tick. */
    private readonly inlineMax = 256,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Fan-outs not finished yet. */
  get pending(): number {
    return this.jobs.length;
  }

  /** Calls `send` for every target, in order; `targets` must not change afterwards. */
  run<T>(targets: readonly T[], send: (target: T) => void): void {
    if (targets.length === 0) return;
    const job: Job = { targets, send: send as (target: unknown) => void, next: 0 };
    if (this.jobs.length === 0 && targets.length <= this.inlineMax) {
      this.work(job, Number.POSITIVE_INFINITY);
      return;
    }
    this.jobs.push(job);
    if (!this.scheduled) this.drain();
  }

  private drain(): void {
    this.scheduled = false;
    const deadline = this.now() + this.sliceMs;
    while (this.jobs.length > 0) {
      const job = this.jobs[0];
      if (job === undefined || !this.work(job, deadline)) break;
      this.jobs.shift();
    }
    if (this.jobs.length > 0) {
      this.scheduled = true;
      setImmediate(() => {
        this.drain();
      });
    }
  }

  /** Sends until the job is done (true) or the deadline passes (false). */
  private work(job: Job, deadline: number): boolean {
    const { targets, send } = job;
    while (job.next < targets.length) {
      const target = targets[job.next++];
      try {
        send(target);
      } catch (error) {
        this.logger.error({ err: error }, 'fan-out delivery failed');
      }
      if (job.next % CLOCK_EVERY === 0 && this.now() >= deadline) return job.next >= targets.length;
    }
    return true;
  }
}
