import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../src/config/load-config.js';
import { Database } from '../../src/database/database.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';

// The chat-authors migration over rows stored before it (PGlite, or DATABASE_URL's server).
let database: Database;
let drop: () => Promise<void>;

beforeAll(async () => {
  const testDb = await createTestDatabase(externalDatabaseUrl());
  drop = testDb.drop;
  database = await Database.open(
    parseConfig({ PGLITE_DATA_DIR: 'memory://', ...(testDb.url !== undefined ? { DATABASE_URL: testDb.url } : {}) })
      .database,
  );
});
afterAll(async () => {
  await database.close();
  await drop();
});

describe('migration ChatAuthors1764200000000', () => {
  it('turns earlier messages into guests keyed by their name, and goes down and up again', async () => {
    const ds = database.dataSource;
    await ds.undoLastMigration();
    await ds.query(
      `INSERT INTO chat_messages (room, author, text, client_msg_id) VALUES ('old', 'ada', 'before', 'm-1'), ('old', 'bob', 'also', NULL)`,
    );
    await ds.runMigrations();
    expect(
      await ds.query(`SELECT author, author_key, guest, text FROM chat_messages WHERE room = 'old' ORDER BY id`),
    ).toEqual([
      { author: 'ada', author_key: 'ada', guest: true, text: 'before' },
      { author: 'bob', author_key: 'bob', guest: true, text: 'also' },
    ]);
    // One name, two identities, one clientMsgId: both stored now.
    const insert = `INSERT INTO chat_messages (room, author, author_key, guest, text, client_msg_id) VALUES ('old', 'ada', $1, false, $2, 'm-1')`;
    await ds.query(insert, ['sub-ada', 'verified']);
    await expect(ds.query(insert, ['sub-ada', 'again'])).rejects.toThrow(/chat_messages_dedup_key/);
    await ds.query(
      `INSERT INTO chat_messages (room, author, author_key, guest, text) VALUES ('old', $1, 'k', false, 'x')`,
      ['n'.repeat(64)],
    );
    // Down keeps the first of the rows that collapse onto one name and clientMsgId, and cuts long names.
    await ds.undoLastMigration();
    expect(await ds.query(`SELECT author, text FROM chat_messages WHERE room = 'old' ORDER BY id`)).toEqual([
      { author: 'ada', text: 'before' },
      { author: 'bob', text: 'also' },
      { author: 'n'.repeat(32), text: 'x' },
    ]);
    await ds.runMigrations();
    expect(await ds.query(`SELECT count(*)::int AS n FROM chat_messages WHERE guest`)).toEqual([{ n: 3 }]);
  });
});
