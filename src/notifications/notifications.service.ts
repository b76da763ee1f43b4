import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { isAdmin, type Caller } from '../auth/caller.js';
import { AppException } from '../common/errors/app.exception.js';
import type { Notification, NotificationChannel } from './notification.js';
import { NotificationsRepository } from './notifications.repository.js';
import { NotificationsWorker } from './notifications.worker.js';

export interface NotificationRequest {
  readonly channel: NotificationChannel;
  readonly to: string;
  readonly subject: string;
  readonly body: string;
}

/** Idempotency keys: 1..200 characters from a safe set (letters, digits and `-_.:~+/=`). */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9\-_.:~+/=]{1,200}$/;

/** Same content → same hash; the order of fields in the JSON body does not matter. */
export const requestHash = (r: NotificationRequest): string =>
  createHash('sha256')
    .update(JSON.stringify([r.channel, r.to, r.subject, r.body]))
    .digest('hex');

@Injectable()
export class NotificationsService {
  private readonly logger = new Logger(NotificationsService.name);

  constructor(
    private readonly notifications: NotificationsRepository,
    private readonly worker: NotificationsWorker,
  ) {}

  /**
   * Stores the notification (committed before this resolves) and wakes the
   * local worker. With an idempotency key, a replay of the same request gets
   * the stored notification back (`replayed`); another request under the same
   * key is a 409. Keys are the caller's own: another caller's identical key is another notification.
   */
  async enqueue(
    request: NotificationRequest,
    idempotencyKey: string | undefined,
    caller: Caller,
  ): Promise<{ notification: Notification; replayed: boolean }> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw new AppException('validation_failed', 'The Idempotency-Key header is not valid', {
        errors: [
          {
            field: 'Idempotency-Key',
            message: 'Idempotency-Key must be 1..200 characters of letters, digits and -_.:~+/=',
          },
        ],
      });
    }
    const hash = requestHash(request);
    const result = await this.notifications.enqueue({
      channel: request.channel,
      recipient: request.to,
      subject: request.subject,
      body: request.body,
      requestedBy: caller.sub,
      idempotencyKey,
      requestHash: hash,
    });
    if (!result.created) {
      if (result.requestHash !== hash) {
        throw new AppException(
          'idempotency_conflict',
          'This Idempotency-Key was already used with a different request body',
        );
      }
      return { notification: result.notification, replayed: true };
    }
    this.logger.log({ notificationId: result.notification.id }, 'notification queued');
    this.worker.wake();
    return { notification: result.notification, replayed: false };
  }

  /** The caller's own notification (any, for an admin); someone else's is a 404, so ids cannot be probed. */
  async get(id: string, caller: Caller): Promise<Notification> {
    const notification = await this.notifications.findById(id);
    if (notification === undefined || (notification.requestedBy !== caller.sub && !isAdmin(caller))) {
      throw new AppException('notification_not_found', `No notification with id ${id}`);
    }
    return notification;
  }
}
