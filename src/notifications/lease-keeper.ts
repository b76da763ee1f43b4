import { CancelledError } from '../resilience/resilience.errors.js';
import type { ClaimedNotification } from './notification.js';

/** Why a send was stopped: its claim is someone else's now, it could not be renewed in time, or shutdown. */
export type LeaseGiveUpReason = 'lost' | 'lapsing' | 'shutdown';

/**
 * The abort reason of a send whose claim was given up: a caller's cancellation
 * (the `smtp` breaker does not count it), with the {@link LeaseGiveUpReason} as `reason`.
 */
const givenUp = (reason: LeaseGiveUpReason): CancelledError => new CancelledError('notification-lease', reason);

export interface LeaseKeeperOptions {
  readonly leaseMs: number;
  /** Extends every claim given in one statement; resolves to the ids still held (the others are lost). */
  readonly renew: (claims: readonly ClaimedNotification[]) => Promise<ReadonlySet<string>>;
  /** Once per claim given up as `lost` or `lapsing` (never for shutdown), after its send was aborted. */
  readonly onGiveUp?: (job: ClaimedNotification, reason: 'lost' | 'lapsing') => void;
  /** After each successful renewal, with the number of claims it extended. */
  readonly onRenewed?: (count: number) => void;
  /** After each failed renewal; `streak` counts the failures in a row. */
  readonly onRenewFailed?: (error: unknown, streak: number) => void;
  /** Monotonic milliseconds; the default is `performance.now()`. */
  readonly now?: () => number;
}

interface Held {
  readonly job: ClaimedNotification;
  readonly controller: AbortController;
  /** Local time by which the database's `locked_until` has surely not passed yet. */
  expiresAt: number;
  deadline: NodeJS.Timeout | undefined;
}

/**
 * Keeps the claims of the sends in hand alive. Every `leaseMs / 3` one
 * renewal extends all of them (the repository fences it by owner, attempt and
 * status); after a failed renewal the next comes `leaseMs / 6` later.
 *
 * Each claim's expiry is counted from the start of the statement that set it
 * (the claim, then each successful renewal): the database computed
 * `now() + leaseMs` after that, so the local figure is never later than the
 * real one, whatever the clocks of the two hosts say. A claim not extended by
 * its expiry minus `leaseMs / 6` is given up: its send is aborted while the
 * lease still holds, so no other instance can claim the job while this one
 * may still be sending it. A claim the renewal no longer finds (another
 * instance took it, or the row changed) is given up at once.
 */
export class LeaseKeeper {
  readonly renewEveryMs: number;
  readonly retryAfterFailureMs: number;
  /** How long before its lease ends a claim that could not be renewed is given up. */
  readonly marginMs: number;
  readonly now: () => number;
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.renewEveryMs = options.leaseMs / 3;
    this.retryAfterFailureMs = options.leaseMs / 6;
    this.marginMs = options.leaseMs / 6;
    this.now = options.now ?? (() => performance.now());
  }

  /** Claims being kept right now. */
  get size(): number {
    return this.held.size;
  }

  /**
   * Starts keeping `job`, claimed by a statement started at `claimedAt` (from `now`).
   * The signal aborts, with a `CancelledError` whose `reason` says why, when the claim is given up.
   */
  hold(job: ClaimedNotification, claimedAt: number): AbortSignal {
    const controller = new AbortController();
    if (this.stopped) {
      controller.abort(givenUp('shutdown'));
      return controller.signal;
    }
    const entry: Held = { job, controller, expiresAt: claimedAt + this.options.leaseMs, deadline: undefined };
    this.held.set(job.id, entry);
    this.armDeadline(entry);
    if (this.timer === undefined && this.renewing === undefined) this.schedule(this.renewEveryMs);
    return controller.signal;
  }

  /** The send of `id` is over: stop keeping its claim (a renewal in flight for it is then ignored). */
  finish(id: string): void {
    const entry = this.held.get(id);
    if (entry === undefined) return;
    this.forget(entry);
  }

  /** Aborts every send still held (reason `shutdown`), clears the timers and waits for a renewal in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const entry of [...this.held.values()]) {
      this.forget(entry);
      entry.controller.abort(givenUp('shutdown'));
    }
    await this.renewing;
  }

  private forget(entry: Held): void {
    clearTimeout(entry.deadline);
    this.held.delete(entry.job.id);
    if (this.held.size === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private giveUp(entry: Held, reason: 'lost' | 'lapsing'): void {
    this.forget(entry);
    entry.controller.abort(givenUp(reason));
    this.options.onGiveUp?.(entry.job, reason);
  }

  private armDeadline(entry: Held): void {
    clearTimeout(entry.deadline);
    const inMs = Math.max(0, entry.expiresAt - this.marginMs - this.now());
    entry.deadline = setTimeout(() => {
      if (this.held.get(entry.job.id) === entry) this.giveUp(entry, 'lapsing');
    }, inMs);
    entry.deadline.unref();
  }

  private schedule(inMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.renewing = this.renewNow().finally(() => {
          this.renewing = undefined;
        });
      },
      Math.max(0, inMs),
    );
    this.timer.unref();
  }

  /** One renewal of every claim held; never rejects. */
  private async renewNow(): Promise<void> {
    const entries = [...this.held.values()];
    if (entries.length === 0) return;
    const startedAt = this.now();
    let nextInMs: number;
    try {
      const still = await this.options.renew(entries.map((e) => e.job));
      if (this.stopped) return;
      this.failures = 0;
      let renewed = 0;
      for (const entry of entries) {
        // Finished or given up while the statement ran: nothing left to keep.
        if (this.held.get(entry.job.id) !== entry) continue;
        if (still.has(entry.job.id)) {
          entry.expiresAt = startedAt + this.options.leaseMs;
          this.armDeadline(entry);
          renewed++;
        } else {
          this.giveUp(entry, 'lost');
        }
      }
      this.options.onRenewed?.(renewed);
      nextInMs = startedAt + this.renewEveryMs - this.now();
    } catch (error) {
      if (this.stopped) return;
      this.failures++;
      this.options.onRenewFailed?.(error, this.failures);
      nextInMs = this.retryAfterFailureMs;
    }
    if (this.held.size > 0) this.schedule(nextInMs);
  }
}
