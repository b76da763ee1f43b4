import { onAbort } from './abort.js';
import { systemClock, type Clock } from './clock.js';
import { EventEmitter, type Event } from './event.js';
import { NEVER_ABORTED, type Policy, type PolicyContext } from './policy.js';
import { BulkheadRejectedError } from './resilience.errors.js';

/** Largest delay `setTimeout` honours; longer ones fire after 1 ms in Node. */
const MAX_TIMER_MS = 2_147_483_647;
/** Suggested wait when nothing better is known (no waiter to time out, no call finished yet). */
const FALLBACK_RETRY_AFTER_MS = 1_000;
/** Weight of the newest duration in the moving average of run times. */
const EWMA_WEIGHT = 0.2;

export interface BulkheadPolicyOptions {
  /** Names the policy in errors, events and snapshots. */
  readonly name: string;
  /** Calls allowed to run at once: an integer >= 1. */
  readonly maxConcurrent: number;
  /** Calls allowed to wait for a slot: an integer >= 0 (0: reject at once when all slots are busy). */
  readonly maxQueue: number;
  /** Longest wait in the queue, in ms: >= 0 and <= 2^31 - 1, or `Infinity` to wait until a slot frees. */
  readonly queueTimeoutMs: number;
  /** Measures run times and queue deadlines for `retryAfterMs`; defaults to `performance.now()`. */
  readonly clock?: Clock;
}

/** Payload of {@link BulkheadPolicy.onReject}. */
export interface BulkheadRejectEvent {
  readonly name: string;
  readonly reason: 'full' | 'queue_timeout';
}

/** Payload of {@link BulkheadPolicy.onQueued}. */
export interface BulkheadQueuedEvent {
  readonly name: string;
  /** Waiters in the queue, this one included. */
  readonly queued: number;
}

/** What {@link BulkheadPolicy.snapshot} reports, e.g. for health or metrics. */
export interface BulkheadSnapshot {
  readonly name: string;
  readonly active: number;
  readonly queued: number;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
}

interface Waiter {
  /** Clock time at which the waiter leaves the queue at the latest. */
  readonly deadline: number;
  /** Hands a slot, already counted in `active`, to this waiter. */
  readonly grant: () => void;
}

/**
 * A semaphore: at most `maxConcurrent` calls run at once, at most `maxQueue`
 * more wait for a slot in FIFO order, and everything beyond is rejected at
 * once with `BulkheadRejectedError(name, 'full', retryAfterMs)`.
 *
 * - A waiter still queued after `queueTimeoutMs` is removed and rejected with
 *   `BulkheadRejectedError(name, 'queue_timeout', retryAfterMs)`.
 * - A waiter whose caller signal aborts leaves the queue at once, freeing its
 *   place, and is rejected with the caller's `reason` (not a bulkhead
 *   rejection: no `onReject`). An already-aborted signal rejects at once.
 * - A finished call (success or failure) hands its slot straight to the
 *   oldest waiter, so a newcomer can never jump the queue.
 *
 * `retryAfterMs` estimates when trying again can succeed: the time until the
 * oldest waiter must leave the queue (a place frees by then at the latest);
 * with no such waiter, a moving average of run times; before any call has
 * finished, 1 s. `fn` gets the caller's signal as is: the bulkhead never
 * cancels work it admitted.
 *
 * @example
 * const bulkhead = new BulkheadPolicy({ name: 'reports', maxConcurrent: 4, maxQueue: 20, queueTimeoutMs: 2_000 });
 * const report = await bulkhead.execute(({ signal }) => render(id, { signal }), request.signal);
 * @publicApi
 */
export class BulkheadPolicy implements Policy {
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;

  private readonly clock: Clock;
  private active = 0;
  /** A Set keeps insertion (FIFO) order and removes an aborted waiter from the middle in O(1). */
  private readonly queue = new Set<Waiter>();
  private averageRunMs: number | undefined;

  private readonly rejectEmitter = new EventEmitter<BulkheadRejectEvent>();
  private readonly queuedEmitter = new EventEmitter<BulkheadQueuedEvent>();

  /** Fires when a call is rejected because the bulkhead is full or its queue wait timed out. */
  readonly onReject: Event<BulkheadRejectEvent> = this.rejectEmitter.event;
  /** Fires when a call starts waiting in the queue. */
  readonly onQueued: Event<BulkheadQueuedEvent> = this.queuedEmitter.event;

  constructor(options: BulkheadPolicyOptions) {
    const { name, maxConcurrent, maxQueue, queueTimeoutMs } = options;
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new RangeError(`maxConcurrent of ${name} must be an integer >= 1, got ${String(maxConcurrent)}`);
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 0) {
      throw new RangeError(`maxQueue of ${name} must be an integer >= 0, got ${String(maxQueue)}`);
    }
    // NaN fails both comparisons, so it is rejected too.
    if (!(queueTimeoutMs >= 0 && (queueTimeoutMs <= MAX_TIMER_MS || queueTimeoutMs === Infinity))) {
      throw new RangeError(
        `queueTimeoutMs of ${name} must be in 0..${MAX_TIMER_MS} or Infinity, got ${String(queueTimeoutMs)}`,
      );
    }
    this.name = name;
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
    this.queueTimeoutMs = queueTimeoutMs;
    this.clock = options.clock ?? systemClock;
  }

  /** Current load; cheap enough to call on every health check or scrape. */
  snapshot(): BulkheadSnapshot {
    return {
      name: this.name,
      active: this.active,
      queued: this.queue.size,
      maxConcurrent: this.maxConcurrent,
      maxQueue: this.maxQueue,
    };
  }

  async execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
    signal.throwIfAborted();
    if (this.active < this.maxConcurrent) {
      this.active++;
    } else if (this.queue.size < this.maxQueue) {
      const outcome = await this.waitForSlot(signal);
      if (outcome === 'aborted') throw signal.reason;
      if (outcome === 'timed_out') throw this.reject('queue_timeout');
      // 'granted': the slot is already counted in `active`.
    } else {
      throw this.reject('full');
    }

    try {
      // A slot handed over can meet a signal aborted in the meantime: don't start.
      signal.throwIfAborted();
      const started = this.clock.now();
      try {
        return await fn({ signal });
      } finally {
        this.recordRun(this.clock.now() - started);
      }
    } finally {
      this.release();
    }
  }

  /** Waits in the queue; the outcome settles once, and every path leaves the queue, timer and listener clean. */
  private waitForSlot(signal: AbortSignal): Promise<'granted' | 'aborted' | 'timed_out'> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const leave = (outcome: 'granted' | 'aborted' | 'timed_out'): void => {
        this.queue.delete(waiter);
        clearTimeout(timer);
        abortSubscription.dispose();
        resolve(outcome);
      };
      const waiter: Waiter = {
        deadline: this.clock.now() + this.queueTimeoutMs,
        grant: () => {
          leave('granted');
        },
      };
      // Subscribe before arming the timer, so `leave` never meets an unset subscription.
      const abortSubscription = onAbort(signal, () => {
        leave('aborted');
      });
      if (this.queueTimeoutMs !== Infinity) {
        timer = setTimeout(() => {
          leave('timed_out');
        }, this.queueTimeoutMs);
      }
      this.queue.add(waiter);
      if (this.queuedEmitter.hasListeners) this.queuedEmitter.emit({ name: this.name, queued: this.queue.size });
    });
  }

  /** Passes the slot to the oldest waiter, or frees it; `active` never dips, so nobody jumps the queue. */
  private release(): void {
    const next = this.queue.values().next();
    if (next.done === true) {
      this.active--;
    } else {
      next.value.grant();
    }
  }

  private reject(reason: 'full' | 'queue_timeout'): BulkheadRejectedError {
    if (this.rejectEmitter.hasListeners) this.rejectEmitter.emit({ name: this.name, reason });
    return new BulkheadRejectedError(this.name, reason, this.retryAfterMs());
  }

  private retryAfterMs(): number {
    const oldest = this.queue.values().next();
    if (oldest.done !== true && Number.isFinite(oldest.value.deadline)) {
      return Math.max(1, Math.ceil(oldest.value.deadline - this.clock.now()));
    }
    return this.averageRunMs === undefined ? FALLBACK_RETRY_AFTER_MS : Math.max(1, Math.ceil(this.averageRunMs));
  }

  private recordRun(durationMs: number): void {
    this.averageRunMs =
      this.averageRunMs === undefined ? durationMs : this.averageRunMs + EWMA_WEIGHT * (durationMs - this.averageRunMs);
  }
}
