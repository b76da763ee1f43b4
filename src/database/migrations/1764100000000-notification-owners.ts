import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every notification records who asked for it (the verified caller's `sub`),
 * and an idempotency key is scoped to that caller: two callers may use the
 * same key without seeing each other's notification.
 */
export class NotificationOwners1764100000000 implements MigrationInterface {
  name = 'NotificationOwners1764100000000';

  async up(runner: QueryRunner): Promise<void> {
    // Rows from before identities belong to nobody (''): only an admin can read them.
    await runner.query(`ALTER TABLE notifications ADD COLUMN requested_by varchar(255) NOT NULL DEFAULT ''`);
    await runner.query(`ALTER TABLE notifications ALTER COLUMN requested_by DROP DEFAULT`);
    await runner.query(`DROP INDEX notifications_idempotency_key_key`);
    await runner.query(
      `CREATE UNIQUE INDEX notifications_requester_idempotency_key ON notifications (requested_by, idempotency_key)`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX notifications_requester_idempotency_key`);
    await runner.query(`CREATE UNIQUE INDEX notifications_idempotency_key_key ON notifications (idempotency_key)`);
    await runner.query(`ALTER TABLE notifications DROP COLUMN requested_by`);
  }
}
