import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Chat authors become identities: `author_key` (the token's `sub`, or the
 * guest name) and `guest`, and `author` widens to a token's 64-character name.
 * Deduplication is per identity, so two callers sharing a name stay apart.
 */
export class ChatAuthors1764200000000 implements MigrationInterface {
  name = 'ChatAuthors1764200000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE chat_messages ALTER COLUMN author TYPE varchar(64)`);
    // Every earlier message had a claimed, unverified name: a guest's.
    await runner.query(`ALTER TABLE chat_messages ADD COLUMN guest boolean NOT NULL DEFAULT true`);
    await runner.query(`ALTER TABLE chat_messages ALTER COLUMN guest DROP DEFAULT`);
    await runner.query(`ALTER TABLE chat_messages ADD COLUMN author_key varchar(255)`);
    await runner.query(`UPDATE chat_messages SET author_key = author`);
    await runner.query(`ALTER TABLE chat_messages ALTER COLUMN author_key SET NOT NULL`);
    await runner.query(`DROP INDEX chat_messages_dedup_key`);
    await runner.query(
      `CREATE UNIQUE INDEX chat_messages_dedup_key ON chat_messages (room, guest, author_key, client_msg_id)`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX chat_messages_dedup_key`);
    // Keys collapse back to names: of two authors' resends under one name and id, only the first stays.
    await runner.query(`
      DELETE FROM chat_messages m USING chat_messages o
       WHERE m.client_msg_id IS NOT NULL AND m.room = o.room AND left(m.author, 32) = left(o.author, 32)
         AND m.client_msg_id = o.client_msg_id AND m.id > o.id`);
    await runner.query(`ALTER TABLE chat_messages DROP COLUMN author_key`);
    await runner.query(`ALTER TABLE chat_messages DROP COLUMN guest`);
    await runner.query(`ALTER TABLE chat_messages ALTER COLUMN author TYPE varchar(32) USING left(author, 32)`);
    await runner.query(`CREATE UNIQUE INDEX chat_messages_dedup_key ON chat_messages (room, author, client_msg_id)`);
  }
}
