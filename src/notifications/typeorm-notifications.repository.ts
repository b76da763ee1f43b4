import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { translateUnavailable } from '../database/translate-db-error.js';
import {
  NOTIFICATION_STATUSES,
  type ClaimedNotification,
  type NewNotification,
  type Notification,
  type NotificationChannel,
  type NotificationStatus,
} from './notification.js';
import { NotificationsRepository, type EnqueueResult } from './notifications.repository.js';

interface RawNotification {
  id: string;
  channel: string;
  recipient: string;
  subject: string;
  body: string;
  requested_by: string;
  status: NotificationStatus;
  attempts: number;
  last_error: string | null;
  created_at: Date | string;
  delivered_at: Date | string | null;
  request_hash: string;
  locked_by: string | null;
}

const COLUMNS = `id, channel, recipient, subject, body, requested_by, status, attempts, last_error, created_at, delivered_at,
  request_hash, locked_by`;

const toNotification = (r: RawNotification): Notification => ({
  id: r.id,
  channel: r.channel as NotificationChannel,
  recipient: r.recipient,
  subject: r.subject,
  body: r.body,
  requestedBy: r.requested_by,
  status: r.status,
  attempts: r.attempts,
  lastError: r.last_error,
  createdAt: new Date(r.created_at),
  deliveredAt: r.delivered_at === null ? null : new Date(r.delivered_at),
});

/** Longest last_error kept (SMTP replies can be long; the row must stay small). */
const MAX_ERROR_LENGTH = 2000;
const clip = (text: string) => (text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text);

/**
 * The outbox on PostgreSQL (or PGlite). Every operation is one statement, so
 * nothing depends on a multi-statement transaction (PGlite multiplexes one
 * backend), and the claim is atomic on its own.
 */
@Injectable()
export class TypeOrmNotificationsRepository extends NotificationsRepository {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async enqueue(input: NewNotification): Promise<EnqueueResult> {
    const inserted = await this.exec(
      `INSERT INTO notifications (channel, recipient, subject, body, requested_by, idempotency_key, request_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (requested_by, idempotency_key) DO NOTHING
       RETURNING ${COLUMNS}`,
      [
        input.channel,
        input.recipient,
        input.subject,
        input.body,
        input.requestedBy,
        input.idempotencyKey ?? null,
        input.requestHash,
      ],
    );
    const row = (inserted.rows as RawNotification[])[0];
    if (row !== undefined) return { notification: toNotification(row), created: true, requestHash: row.request_hash };
    // ON CONFLICT waited for a concurrent insert of the same key to commit, so the row is visible now.
    const existing = await this.exec(
      `SELECT ${COLUMNS} FROM notifications WHERE requested_by = $1 AND idempotency_key = $2`,
      [input.requestedBy, input.idempotencyKey ?? null],
    );
    const found = (existing.rows as RawNotification[])[0];
    if (found === undefined) throw new Error('idempotency key conflicted but no row holds it');
    return { notification: toNotification(found), created: false, requestHash: found.request_hash };
  }

  async findById(id: string): Promise<Notification | undefined> {
    const result = await this.exec(`SELECT ${COLUMNS} FROM notifications WHERE id = $1`, [id]);
    const row = (result.rows as RawNotification[])[0];
    return row === undefined ? undefined : toNotification(row);
  }

  async claim(
    workerId: string,
    limit: number,
    leaseMs: number,
    holding: readonly string[],
  ): Promise<ClaimedNotification[]> {
    const result = await this.exec(
      `UPDATE notifications AS n
          SET status = 'sending',
              locked_by = $1,
              locked_until = now() + $2 * interval '1 millisecond',
              attempts = n.attempts + 1
        WHERE n.id IN (
          SELECT id FROM notifications
           WHERE (status = 'queued' AND next_attempt_at <= now())
              OR (status = 'sending' AND locked_until < now() AND NOT (id = ANY($4::uuid[])))
           ORDER BY next_attempt_at
           LIMIT $3
           FOR UPDATE SKIP LOCKED)
        RETURNING ${COLUMNS.split(',')
          .map((c) => `n.${c.trim()}`)
          .join(', ')}`,
      [workerId, leaseMs, limit, [...holding]],
    );
    return (result.rows as RawNotification[]).map((r) => ({ ...toNotification(r), lockedBy: workerId }));
  }

  async renew(claims: readonly ClaimedNotification[], leaseMs: number): Promise<ReadonlySet<string>> {
    if (claims.length === 0) return new Set();
    const result = await this.exec(
      `UPDATE notifications AS n
          SET locked_until = now() + $4 * interval '1 millisecond'
         FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(id, locked_by, attempts)
        WHERE n.id = c.id AND n.locked_by = c.locked_by AND n.attempts = c.attempts AND n.status = 'sending'
        RETURNING n.id`,
      [claims.map((c) => c.id), claims.map((c) => c.lockedBy), claims.map((c) => c.attempts), leaseMs],
    );
    return new Set((result.rows as { id: string }[]).map((r) => r.id));
  }

  async markDelivered(job: ClaimedNotification): Promise<boolean> {
    return this.finish(
      job,
      `status = 'delivered', delivered_at = now(), last_error = NULL, locked_by = NULL, locked_until = NULL`,
      [],
    );
  }

  async markRetry(job: ClaimedNotification, error: string, delayMs: number): Promise<boolean> {
    return this.finish(
      job,
      `status = 'queued', last_error = $4, next_attempt_at = now() + $5 * interval '1 millisecond',
       locked_by = NULL, locked_until = NULL`,
      [clip(error), Math.max(0, Math.round(delayMs))],
    );
  }

  async markFailed(job: ClaimedNotification, error: string): Promise<boolean> {
    return this.finish(job, `status = 'failed', last_error = $4, locked_by = NULL, locked_until = NULL`, [clip(error)]);
  }

  async release(jobs: readonly ClaimedNotification[]): Promise<number> {
    if (jobs.length === 0) return 0;
    const [first] = jobs;
    const result = await this.exec(
      `UPDATE notifications SET status = 'queued', locked_by = NULL, locked_until = NULL, next_attempt_at = now()
        WHERE id = ANY($1::uuid[]) AND status = 'sending' AND locked_by = $2`,
      [jobs.map((j) => j.id), first?.lockedBy ?? ''],
    );
    return result.affected;
  }

  async countByStatus(): Promise<Record<NotificationStatus, number>> {
    const result = await this.exec(`SELECT status, count(*) AS count FROM notifications GROUP BY status`, []);
    const counts = Object.fromEntries(NOTIFICATION_STATUSES.map((s) => [s, 0])) as Record<NotificationStatus, number>;
    for (const row of result.rows as { status: NotificationStatus; count: string }[]) {
      counts[row.status] = Number(row.count);
    }
    return counts;
  }

  /** Applies a completion only while this worker still holds this claim (same owner, same attempt). */
  private async finish(job: ClaimedNotification, set: string, params: unknown[]): Promise<boolean> {
    const result = await this.exec(
      `UPDATE notifications SET ${set}
        WHERE id = $1 AND status = 'sending' AND locked_by = $2 AND attempts = $3`,
      [job.id, job.lockedBy, job.attempts, ...params],
    );
    return result.affected > 0;
  }

  private async exec(sql: string, params: unknown[]): Promise<{ rows: unknown[]; affected: number }> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, params, true);
      return { rows: result.records, affected: result.affected ?? result.records.length };
    } catch (error) {
      throw translateUnavailable(error);
    } finally {
      await runner.release();
    }
  }
}
