import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateChatMessages1764000000000 implements MigrationInterface {
  name = 'CreateChatMessages1764000000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE chat_messages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        room varchar(64) NOT NULL,
        author varchar(32) NOT NULL,
        text varchar(2000) NOT NULL,
        client_msg_id varchar(64),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    // History and catch-up read one room in id order.
    await runner.query(`CREATE INDEX chat_messages_room_id_idx ON chat_messages (room, id)`);
    // An acknowledged send resent with the same clientMsgId is stored once (NULLs stay distinct).
    await runner.query(`CREATE UNIQUE INDEX chat_messages_dedup_key ON chat_messages (room, author, client_msg_id)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE chat_messages`);
  }
}
