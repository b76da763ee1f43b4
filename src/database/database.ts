import { Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { createDataSource } from './data-source.factory.js';
import { EmbeddedPostgres } from './embedded/embedded-postgres.js';

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
        const applied = await dataSource.runMigrations({ transaction: 'each' });
        if (applied.length > 0) Database.logger.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
      }
    } catch (error) {
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
      throw error;
    }
    return new Database(dataSource, config.mode, embedded);
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
