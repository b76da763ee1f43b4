import { DataSource, type DataSourceOptions } from 'typeorm';
import type { PoolConfig } from '../config/app-config.js';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

export interface DataSourceParams {
  readonly url: string;
  readonly pool: PoolConfig;
  readonly synchronize?: boolean;
}

/** TypeORM options for the pg driver; pool settings go straight to pg.Pool. */
export function dataSourceOptions(params: DataSourceParams): DataSourceOptions {
  return {
    type: 'postgres',
    url: params.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsRun: false,
    synchronize: params.synchronize ?? false,
    logging: false,
    poolSize: params.pool.size,
    connectTimeoutMS: params.pool.connectTimeoutMs,
    applicationName: 'nest-async-api',
    extra: {
      max: params.pool.size,
      idleTimeoutMillis: params.pool.idleTimeoutMs,
      connectionTimeoutMillis: params.pool.connectTimeoutMs,
      ...(params.pool.statementTimeoutMs > 0 ? { statement_timeout: params.pool.statementTimeoutMs } : {}),
    },
  };
}

export function createDataSource(params: DataSourceParams): DataSource {
  return new DataSource(dataSourceOptions(params));
}
