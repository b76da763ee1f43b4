import { Logger } from '@nestjs/common';
import pg, { type Pool } from 'pg';
import type { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { createDataSource } from './data-source.factory.js';
import { EmbeddedPostgres } from './embedded/embedded-postgres.js';

/** Advisory lock key of the migrations (any constant the schema's other users do not take). */
const MIGRATION_LOCK_KEY = 7_263_001;

/**
 * The service's database: a TypeORM DataSource on the pg driver, pointed at
 * DATABASE_URL or at an embedded PGlite server this process starts and owns.
 */
export class Database {
  private static readonly logger = new Logger('Database');

  private constructor(
    readonly dataSource: DataSource,
    readonly mode: 'external' | 'embedded',
    private readonly embedded: EmbeddedPostgres | undefined,
  ) {}

  static async open(config: AppConfig['database'], options: { synchronize?: boolean } = {}): Promise<Database> {
    let embedded: EmbeddedPostgres | undefined;
    let url: string;
    if (config.mode === 'embedded') {
      // One more wire connection than the pool so the migration CLI or a probe can still get in.
      embedded = new EmbeddedPostgres({
        dataDir: config.dataDir,
        port: config.port,
        maxConnections: config.pool.size + 2,
      });
      url = await embedded.start();
      Database.logger.log(
        `embedded PostgreSQL (PGlite) on 127.0.0.1:${String(embedded.port)}, data in ${config.dataDir}`,
      );
    } else {
      url = config.url;
    }
    const dataSource = createDataSource({
      url,
      pool: config.pool,
      ...(options.synchronize !== undefined ? { synchronize: options.synchronize } : {}),
    });
    try {
      await dataSource.initialize();
      if (config.migrationsRun) {
        const applied = await Database.migrate(dataSource, config.mode === 'external' ? url : undefined);
        if (applied.length > 0) Database.logger.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
      }
    } catch (error) {
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
      throw error;
    }
    return new Database(dataSource, config.mode, embedded);
  }

  /**
   * Applies pending migrations. On a server other instances may share, it holds
   * a session advisory lock meanwhile, on a connection of its own (a pool of one
   * must stay free for the migrations): instances starting together take turns,
   * and the later ones find the work done rather than fail on a half-made table.
   * Ending that connection releases the lock, also when the process dies.
   */
  private static async migrate(dataSource: DataSource, sharedServerUrl: string | undefined) {
    if (sharedServerUrl === undefined) return dataSource.runMigrations({ transaction: 'each' });
    const lock = new pg.Client({ connectionString: sharedServerUrl });
    // A lost connection fails the query below; the event must not crash the process.
    lock.on('error', () => {});
    await lock.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      return await dataSource.runMigrations({ transaction: 'each' });
    } finally {
      await lock.end();
    }
  }

  /** The pg pool behind TypeORM, for pool metrics. */
  get pool(): Pool | undefined {
    const driver = this.dataSource.driver as unknown as { master?: Pool };
    return driver.master;
  }

  async close(): Promise<void> {
    try {
      if (this.dataSource.isInitialized) await this.dataSource.destroy();
    } finally {
      await this.embedded?.stop();
    }
  }
}
