import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppException } from '../../src/common/errors/app.exception.js';
import { parseConfig } from '../../src/config/load-config.js';
import { Database } from '../../src/database/database.js';
import { MIGRATIONS } from '../../src/database/migrations/index.js';
import { TypeOrmUsersRepository } from '../../src/users/typeorm-users.repository.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';

// The TypeORM repository against a real PostgreSQL: DATABASE_URL's server when
// set, else the embedded PGlite server (real Postgres compiled to WASM).
let database: Database;
let drop: () => Promise<void>;
let repo: TypeOrmUsersRepository;
let config: ReturnType<typeof parseConfig>;

beforeAll(async () => {
  const testDb = await createTestDatabase(externalDatabaseUrl());
  drop = testDb.drop;
  config = parseConfig({
    PGLITE_DATA_DIR: 'memory://',
    ...(testDb.url !== undefined ? { DATABASE_URL: testDb.url } : {}),
  });
  database = await Database.open(config.database);
  repo = new TypeOrmUsersRepository(database.dataSource, database, config);
});
afterAll(async () => {
  await database.close();
  await drop();
});

describe('TypeOrmUsersRepository', () => {
  it('stores, finds, updates and deletes', async () => {
    const created = await repo.create({ name: 'Medium', email: 'medium@example.org' });
    expect(created).toMatchObject({ name: 'Medium', email: 'medium@example.org' });
    expect(created.createdAt).toBeInstanceOf(Date);
    expect(await repo.findById(created.id)).toEqual(created);
    const updated = await repo.update(created.id, { email: 'medium2@example.org' });
    expect(updated?.email).toBe('medium2@example.org');
    expect(updated!.updatedAt.getTime()).toBeGreaterThanOrEqual(created.updatedAt.getTime());
    expect(await repo.update(2_000_000_000, { name: 'x' })).toBeUndefined();
    expect(await repo.delete(created.id)).toBe(true);
    expect(await repo.delete(created.id)).toBe(false);
    expect(await repo.findById(created.id)).toBeUndefined();
  });

  it('enforces case-insensitive email uniqueness under concurrent inserts', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        repo.create({ name: `Racer ${String(i)}`, email: i % 2 === 0 ? 'Race@Example.org' : 'race@example.ORG' }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(19);
    for (const f of failed) {
      expect(f.reason).toBeInstanceOf(AppException);
      expect((f.reason as AppException).code).toBe('email_taken');
    }
  });

  it('lists after an id in ascending order', async () => {
    const made = [];
    for (let i = 0; i < 5; i++)
      made.push(await repo.create({ name: `L${String(i)}`, email: `list${String(i)}@example.org` }));
    const firstId = made[0]!.id;
    const page = await repo.listAfter(firstId, 3);
    expect(page.map((u) => u.id)).toEqual(made.slice(1, 4).map((u) => u.id));
  });

  it('serves the hot reads concurrently on every pool connection, prepared by name on a real server', async () => {
    const made: Awaited<ReturnType<typeof repo.create>>[] = [];
    for (let i = 0; i < 3; i++)
      made.push(await repo.create({ name: `Hot ${String(i)}`, email: `hot${String(i)}@example.org` }));
    // More concurrent reads than pool connections, so every connection parses (or reuses) the statements.
    const reads = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0 ? repo.findById(made[i % 3]!.id) : repo.listAfter(made[0]!.id - 1, 2),
      ),
    );
    for (let i = 0; i < reads.length; i += 2) expect(reads[i]).toEqual(made[i % 3]);
    for (let i = 1; i < reads.length; i += 2) expect(reads[i]).toEqual(made.slice(0, 2));
    const prepared = (await database.pool!.query<{ name: string }>('SELECT name FROM pg_prepared_statements')).rows;
    const ours = prepared.map((r) => r.name).filter((n) => n.startsWith('users_'));
    // Any connection that served a read has prepared it. The embedded server shares one
    // session between connections, where names would collide (42P05): none there.
    if (config.database.pool.namedStatements) expect(ours.length).toBeGreaterThan(0);
    else expect(ours).toEqual([]);
  });

  it('runs migrations once and records them', async () => {
    const rows: { name: string }[] = await database.dataSource.query('SELECT name FROM migrations ORDER BY id');
    expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name));
    expect(await database.dataSource.showMigrations()).toBe(false);
  });
});
