// A fresh PostgreSQL database for one benchmark run: created on the server of a
// URL, dropped by the run's cleanup. Shared by bench/run.mjs, bench/tail.bench.mjs
// and bench/connections.bench.mjs, which differ only in what they do without one.
import pg from 'pg';

/**
 * Creates the database `name` on the PostgreSQL server of `serverUrl`. Resolves to
 * `{ url, host, version, drop }` (`drop()` removes it, closing what still uses it),
 * or to `{ unreachable }` (the reason) when no server answers within 2 s.
 */
export async function freshDatabase(serverUrl, name) {
  const admin = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 2000 });
  try {
    await admin.connect();
  } catch (error) {
    return { unreachable: error instanceof Error ? error.message : String(error) };
  }
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  return {
    url: url.toString(),
    host: url.host,
    version,
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
