/** States of a notification: queued → sending → delivered, or back to queued (retry), or failed. */
export const NOTIFICATION_STATUSES = ['queued', 'sending', 'delivered', 'failed'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

export type NotificationChannel = 'email';

/** A notification as the domain sees it (no ORM types leak past the repository). */
export interface Notification {
  readonly id: string;
  readonly channel: NotificationChannel;
  readonly recipient: string;
  readonly subject: string;
  readonly body: string;
  /** The verified caller (`sub`) who asked for it: the only one, with admins, who may read it. */
  readonly requestedBy: string;
  readonly status: NotificationStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly deliveredAt: Date | null;
}

export interface NewNotification {
  readonly channel: NotificationChannel;
  readonly recipient: string;
  readonly subject: string;
  readonly body: string;
  readonly requestedBy: string;
  /** Scoped to `requestedBy`: another caller's identical key is another notification. */
  readonly idempotencyKey: string | undefined;
  /** sha256 of the request's content, to tell a replay from a reuse of the key. */
  readonly requestHash: string;
}

/** A job a worker has claimed: `attempts` (already counted) fences its later updates. */
export interface ClaimedNotification extends Notification {
  readonly lockedBy: string;
}

/** The Message-ID of every attempt of one notification, so receivers can drop duplicates. */
export const messageIdFor = (id: string): string => `<${id}@nest-async-api>`;
