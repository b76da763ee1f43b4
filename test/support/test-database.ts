import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * With DATABASE_URL set, every test app gets a fresh database on that server
 * (dropped afterwards), so suites never see each other's rows. Without it,
 * apps use the embedded default in memory.
 */
export async function createTestDatabase(
  baseUrl: string | undefined,
): Promise<{ url: string | undefined; drop: () => Promise<void> }> {
  if (baseUrl === undefined || baseUrl === '') return { url: undefined, drop: async () => {} };
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * The database variables of an app started as a process: a fresh database on
 * `baseUrl`'s server when given, else the embedded default in memory.
 */
export async function processDatabaseEnv(
  baseUrl: string | undefined,
): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  const db = await createTestDatabase(baseUrl);
  return { env: db.url === undefined ? { PGLITE_DATA_DIR: 'memory://' } : { DATABASE_URL: db.url }, drop: db.drop };
}
