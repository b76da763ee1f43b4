import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateNotifications1763900000000 implements MigrationInterface {
  name = 'CreateNotifications1763900000000';

  async up(runner: QueryRunner): Promise<void> {
    // The table is the queue (a transactional outbox): workers claim due rows with FOR UPDATE SKIP LOCKED.
    await runner.query(`
      CREATE TABLE notifications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        channel varchar(16) NOT NULL,
        recipient varchar(254) NOT NULL,
        subject varchar(200) NOT NULL,
        body text NOT NULL,
        idempotency_key varchar(200) NULL,
        request_hash char(64) NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'queued',
        attempts integer NOT NULL DEFAULT 0,
        last_error text NULL,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz NULL,
        locked_by text NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz NULL,
        CONSTRAINT notifications_status_check CHECK (status IN ('queued', 'sending', 'delivered', 'failed'))
      )`);
    await runner.query(`CREATE UNIQUE INDEX notifications_idempotency_key_key ON notifications (idempotency_key)`);
    await runner.query(`CREATE INDEX notifications_status_next_attempt_idx ON notifications (status, next_attempt_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE notifications`);
  }
}
