import { type DynamicModule, Global, Module } from '@nestjs/common';
import cluster from 'node:cluster';
import { AppConfig } from '../config/app-config.js';
import { ClusterMetricsSource, processChannel } from './cluster-metrics.source.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsRegistry } from './metrics.registry.js';
import { MetricsSource } from './metrics.source.js';

@Global()
@Module({})
export class MetricsModule {
  static forRoot(registry: MetricsRegistry): DynamicModule {
    return {
      module: MetricsModule,
      controllers: [MetricsController],
      providers: [
        { provide: MetricsRegistry, useValue: registry },
        {
          provide: MetricsSource,
          inject: [AppConfig],
          // A cluster worker answers for the whole process group; a single process for itself.
          useFactory: (config: AppConfig): MetricsSource =>
            config.cluster.workers > 1 && cluster.isWorker
              ? new ClusterMetricsSource(registry, processChannel())
              : { scrape: () => registry.metrics() },
        },
      ],
      exports: [MetricsRegistry],
    };
  }
}
