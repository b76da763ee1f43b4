import type { ClaimedNotification, NewNotification, Notification, NotificationStatus } from './notification.js';

/** Result of an enqueue: the stored row, and whether it was created now or found by its idempotency key. */
export interface EnqueueResult {
  readonly notification: Notification;
  readonly created: boolean;
  /** The stored request hash (differs from the new one when a key is reused for another request). */
  readonly requestHash: string;
}

/**
 * Port for the notification outbox (the abstract class is the DI token).
 * Completion methods are fenced by the claim (`lockedBy` + `attempts`): a
 * worker whose lease expired and whose job was claimed again changes nothing.
 * Implementations throw AppException('database_unavailable') when storage cannot answer.
 */
export abstract class NotificationsRepository {
  /** Inserts a queued row, or returns the row already stored under the same idempotency key. */
  abstract enqueue(input: NewNotification): Promise<EnqueueResult>;
  abstract findById(id: string): Promise<Notification | undefined>;
  /**
   * Claims up to `limit` due jobs (queued and due, or sending with an expired lease) in one
   * statement with FOR UPDATE SKIP LOCKED: status sending, lease until now + leaseMs, attempts + 1.
   * `holding` are ids this worker is still sending: never re-claimed by it, even past their lease.
   */
  abstract claim(
    workerId: string,
    limit: number,
    leaseMs: number,
    holding: readonly string[],
  ): Promise<ClaimedNotification[]>;
  /**
   * Extends the lease of claims still sending in one statement: locked_until = now() + leaseMs
   * for each row still held under the same claim (`lockedBy` + `attempts`, status sending).
   * Returns the ids extended; a claim missing from them is no longer its worker's.
   */
  abstract renew(claims: readonly ClaimedNotification[], leaseMs: number): Promise<ReadonlySet<string>>;
  abstract markDelivered(job: ClaimedNotification): Promise<boolean>;
  abstract markRetry(job: ClaimedNotification, error: string, delayMs: number): Promise<boolean>;
  abstract markFailed(job: ClaimedNotification, error: string): Promise<boolean>;
  /** Puts claimed, unfinished jobs back in the queue (shutdown). Returns how many. */
  abstract release(jobs: readonly ClaimedNotification[]): Promise<number>;
  /** Row count per status (for the queue-depth gauge). */
  abstract countByStatus(): Promise<Record<NotificationStatus, number>>;
}
