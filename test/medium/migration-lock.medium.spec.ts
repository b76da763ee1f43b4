import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../src/config/load-config.js';
import { Database } from '../../src/database/database.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';

// Instances that start together on one fresh database (a real PostgreSQL: DATABASE_URL).
const url = externalDatabaseUrl();
if (url === undefined) console.warn('[skip] migrations of instances starting together: DATABASE_URL not set');
const describeServer = url === undefined ? describe.skip : describe;

describeServer('migrations of instances starting together', () => {
  let drop: () => Promise<void> = async () => {};
  let databaseUrl: string;
  beforeAll(async () => {
    const testDb = await createTestDatabase(url);
    drop = testDb.drop;
    databaseUrl = testDb.url ?? '';
  });
  afterAll(async () => {
    await drop();
  });

  it('take turns: all four open, and each migration is applied once', async () => {
    const config = parseConfig({ DATABASE_URL: databaseUrl, DB_POOL_SIZE: '1' }).database;
    const opened = await Promise.allSettled([1, 2, 3, 4].map(() => Database.open(config)));
    const databases = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    try {
      expect(opened.filter((o) => o.status === 'rejected')).toEqual([]);
      const rows = await databases[0]!.dataSource.query<{ name: string; n: string }[]>(
        'SELECT name, count(*) AS n FROM migrations GROUP BY name',
      );
      expect(rows.length).toBe(databases[0]!.dataSource.migrations.length);
      expect(rows.every((r) => r.n === '1')).toBe(true);
    } finally {
      await Promise.all(databases.map((d) => d.close()));
    }
  });
});
