import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { MetricsRegistry } from '../metrics/metrics.registry.js';
import { Database } from './database.js';
import { DatabaseHealthIndicator } from './database.health.js';
import { registerDatabaseMetrics } from './database.metrics.js';

@Global()
@Module({
  imports: [TerminusModule],
  providers: [
    {
      provide: Database,
      inject: [AppConfig, MetricsRegistry],
      useFactory: async (config: AppConfig, registry: MetricsRegistry) => {
        const database = await Database.open(config.database);
        registerDatabaseMetrics(registry, database);
        return database;
      },
    },
    { provide: DataSource, inject: [Database], useFactory: (database: Database) => database.dataSource },
    DatabaseHealthIndicator,
  ],
  exports: [Database, DataSource, DatabaseHealthIndicator],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(private readonly database: Database) {}

  // Runs after the HTTP server has closed, so in-flight requests still had the pool.
  async onApplicationShutdown(): Promise<void> {
    await this.database.close();
  }
}
