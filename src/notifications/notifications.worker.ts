import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { AppConfig } from '../config/app-config.js';
import { exponentialBackoff, type Backoff } from '../resilience/backoff.js';
import { MailTransport } from './mail/mail-transport.js';
import { classifySendError, describeSendError } from './mail/smtp-errors.js';
import { LeaseKeeper } from './lease-keeper.js';
import { messageIdFor, type ClaimedNotification } from './notification.js';
import { NotificationsMetrics } from './notifications.metrics.js';
import { NotificationsRepository } from './notifications.repository.js';

interface InFlight {
  readonly job: ClaimedNotification;
  readonly done: Promise<void>;
}

/** After shutdown aborts the sends left, how long to wait for them to settle (an outcome already being written). */
const ABORTED_SETTLE_MS = 1000;

/** Waits until every one of `sends` is done, or `ms` passed. */
async function settled(sends: readonly InFlight[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(sends.map((p) => p.done)),
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/**
 * Delivers queued notifications: claims due rows from the outbox (several
 * instances share it; SKIP LOCKED gives each job to one), sends up to
 * NOTIFY_CONCURRENCY at once, and records the outcome under the claim.
 * Polls every NOTIFY_POLL_INTERVAL_MS, at once after a local enqueue (`wake`),
 * and again as soon as a slot frees while work remains.
 *
 * While a send is in hand its claim is renewed ({@link LeaseKeeper}); a claim
 * that is lost, or cannot be renewed before it would lapse, has its send
 * aborted and its row left alone (someone else's now, or theirs once the lease
 * runs out), so two instances never send one job at the same time.
 *
 * Shutdown runs in `beforeApplicationShutdown`, before DatabaseModule closes
 * the pool in `onApplicationShutdown`: stop claiming, wait for sends in hand
 * (up to SHUTDOWN_GRACE_MS, renewing their claims), abort the sends still
 * running, put their claims back in the queue.
 */
@Injectable()
export class NotificationsWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  /** Written to `locked_by`, so a claim names the instance that holds it. */
  readonly id = `${hostname()}:${String(process.pid)}:${randomUUID().slice(0, 8)}`;
  private readonly logger = new Logger('NotificationsWorker');
  private readonly inFlight = new Map<string, InFlight>();
  private readonly backoff: Backoff;
  private readonly maxAttempts: number;
  private readonly leases: LeaseKeeper;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Set by `wake` and by a full claim: look again as soon as a slot is free. */
  private moreWork = false;
  private interruptIdle: (() => void) | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly repository: NotificationsRepository,
    private readonly transport: MailTransport,
    private readonly events: DomainEvents,
    private readonly metrics: NotificationsMetrics,
  ) {
    const policy = config.policy('smtp');
    this.maxAttempts = policy.RETRY_MAX_ATTEMPTS;
    this.backoff = exponentialBackoff({
      baseDelayMs: policy.RETRY_BASE_DELAY_MS,
      maxDelayMs: Math.max(policy.RETRY_BASE_DELAY_MS, policy.RETRY_MAX_DELAY_MS),
      jitter: 'full',
    });
    const { leaseMs } = config.notifications;
    this.leases = new LeaseKeeper({
      leaseMs,
      renew: (claims) => this.repository.renew(claims, leaseMs),
      onRenewed: (count) => {
        this.metrics.leases.inc({ outcome: 'renewed' }, count);
      },
      onRenewFailed: (error, streak) => {
        // Once per outage; what it costs is logged per send given up.
        if (streak === 1) {
          this.logger.warn({ err: error, workerId: this.id }, 'notifications worker: lease renewal failed; retrying');
        }
      },
      onGiveUp: (job, reason) => {
        this.metrics.leases.inc({ outcome: reason });
        this.logger.warn(
          { notificationId: job.id, attempts: job.attempts, reason, leaseMs, workerId: this.id },
          reason === 'lost'
            ? 'notification send aborted: another worker holds its claim now'
            : 'notification send aborted: its lease could not be renewed before it ran out',
        );
      },
    });
  }

  onApplicationBootstrap(): void {
    if (!this.config.notifications.workerEnabled) {
      this.logger.log('notifications worker disabled (NOTIFY_WORKER_ENABLED=false)');
      return;
    }
    this.loop = this.run();
    fireAndForget(this.loop, this.logger, 'notifications worker loop');
  }

  /** A notification was just stored: claim now instead of at the next poll. */
  wake(): void {
    this.moreWork = true;
    this.interruptIdle?.();
  }

  /** Sends in hand right now. */
  get busy(): number {
    return this.inFlight.size;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.interruptIdle?.();
    try {
      await this.loop;
    } catch {
      // already logged by fireAndForget
    }
    const pending = [...this.inFlight.values()];
    if (pending.length > 0) {
      this.logger.log({ inFlight: pending.length }, 'notifications worker: waiting for sends in hand');
      await settled(pending, this.config.shutdown.graceMs);
    }
    const left = [...this.inFlight.values()];
    // Abort the sends left before releasing their claims: another instance may take them at once.
    await this.leases.stop();
    if (left.length > 0) await settled(left, ABORTED_SETTLE_MS);
    const unfinished = left.map((p) => p.job);
    if (unfinished.length > 0) {
      try {
        const released = await this.repository.release(unfinished);
        this.logger.warn({ released }, 'notifications worker: released unfinished jobs back to the queue');
      } catch (error) {
        this.logger.error({ err: error }, 'notifications worker: could not release jobs; their leases will expire');
      }
    }
    await this.transport.close();
    if (this.loop !== undefined) this.logger.log({ workerId: this.id }, 'notifications worker stopped');
  }

  private async run(): Promise<void> {
    const { concurrency, leaseMs } = this.config.notifications;
    this.logger.log({ workerId: this.id, concurrency, transport: this.transport.kind }, 'notifications worker started');
    let claimFailingSince: number | undefined;
    while (!this.isStopping()) {
      const free = concurrency - this.inFlight.size;
      if (free > 0) {
        this.moreWork = false;
        try {
          const claimedAt = this.leases.now();
          const jobs = await this.repository.claim(this.id, free, leaseMs, [...this.inFlight.keys()]);
          if (claimFailingSince !== undefined) {
            this.logger.log({ downForMs: Date.now() - claimFailingSince }, 'notifications worker: claiming again');
            claimFailingSince = undefined;
          }
          if (jobs.length === free) this.moreWork = true;
          for (const job of jobs) this.start(job, claimedAt);
        } catch (error) {
          // A poll every few ms would log each failure of one outage: the first, then its end.
          if (claimFailingSince === undefined) {
            claimFailingSince = Date.now();
            this.logger.warn({ err: error }, 'notifications worker: claim failed; trying again at every poll');
          } else {
            this.logger.debug({ err: error }, 'notifications worker: claim failed again');
          }
        }
      }
      // Re-read: shutdown may have begun while the claim was in flight.
      if (this.isStopping()) break;
      if (this.moreWork && this.inFlight.size < concurrency) continue;
      await this.idle(this.config.notifications.pollIntervalMs);
    }
  }

  private isStopping(): boolean {
    return this.stopping;
  }

  /** Waits the poll interval, or less when woken (enqueue, a freed slot with work left, shutdown). */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.interruptIdle = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.interruptIdle = done;
    });
  }

  private start(job: ClaimedNotification, claimedAt: number): void {
    const done = this.deliver(job, this.leases.hold(job, claimedAt)).finally(() => {
      this.inFlight.delete(job.id);
      if (this.moreWork) this.interruptIdle?.();
    });
    this.inFlight.set(job.id, { job, done });
    fireAndForget(done, this.logger, `deliver notification ${job.id}`);
  }

  /** `lease` aborts when the claim is given up: then nothing is recorded (the keeper logged it). */
  private async deliver(job: ClaimedNotification, lease: AbortSignal): Promise<void> {
    this.metrics.attempts.inc();
    try {
      await this.transport.send(
        { to: job.recipient, subject: job.subject, text: job.body, messageId: messageIdFor(job.id) },
        lease,
      );
    } catch (error) {
      this.leases.finish(job.id);
      if (!lease.aborted) await this.recordFailure(job, error);
      return;
    }
    // Sent: nothing left to abort. Recording it is fenced by the claim, whatever became of the lease.
    this.leases.finish(job.id);
    if (await this.repository.markDelivered(job)) {
      this.metrics.delivered.inc();
      this.metrics.latency.observe(Math.max(0, Date.now() - job.createdAt.getTime()) / 1000);
      this.events.publish('notification.delivered', {
        notificationId: job.id,
        requestedBy: job.requestedBy,
        attempts: job.attempts,
      });
    } else {
      this.logger.warn({ notificationId: job.id }, 'notification sent, but its claim was lost before recording it');
    }
  }

  private async recordFailure(job: ClaimedNotification, error: unknown): Promise<void> {
    const kind = classifySendError(error);
    const message = describeSendError(error);
    const fields = { notificationId: job.id, attempts: job.attempts, kind, error: message };
    if (kind === 'transient' && job.attempts < this.maxAttempts) {
      const retryAfter = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
      const delayMs = Math.max(this.backoff(job.attempts), typeof retryAfter === 'number' ? retryAfter : 0);
      if (await this.repository.markRetry(job, message, delayMs)) {
        this.metrics.failures.inc({ kind: 'transient' });
        this.logger.warn({ ...fields, retryInMs: delayMs }, 'notification send failed; will retry');
      }
      return;
    }
    if (await this.repository.markFailed(job, message)) {
      this.metrics.failures.inc({ kind: kind === 'permanent' ? 'permanent' : 'dead' });
      this.logger.warn(
        fields,
        kind === 'permanent' ? 'notification refused permanently' : 'notification dead-lettered',
      );
      this.events.publish('notification.failed', {
        notificationId: job.id,
        requestedBy: job.requestedBy,
        attempts: job.attempts,
        error: message,
      });
    }
  }
}
