import type { ClientBase } from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { PoolConfig } from '../config/app-config.js';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

export interface DataSourceParams {
  readonly url: string;
  readonly pool: PoolConfig;
  readonly synchronize?: boolean;
}

/**
 * pg emits 'error' on a client whose backend dies, and an 'error' nobody
 * listens to crashes the process. pg-pool listens only while a client is
 * idle, and TypeORM attaches its listener a microtask after checkout; a client
 * handed over while its socket's data is still being parsed (released from a
 * query callback straight to a waiting request) met a FATAL in the same chunk
 * with no listener at all: pg_terminate_backend under load took the service
 * down. The error still reaches whoever holds the client (its query fails,
 * the pool drops it as not queryable), so this listener only has to exist.
 */
const keepClientErrorsHandled = (client: ClientBase): void => {
  client.on('error', () => {});
};

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
      onConnect: keepClientErrorsHandled,
      ...(params.pool.statementTimeoutMs > 0 ? { statement_timeout: params.pool.statementTimeoutMs } : {}),
    },
  };
}

export function createDataSource(params: DataSourceParams): DataSource {
  return new DataSource(dataSourceOptions(params));
}
