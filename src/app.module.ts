import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import type { Logger } from 'pino';
import { ProblemDetailsFilter } from './common/errors/problem-details.filter.js';
import { createValidationPipe } from './common/http/validation.pipe.js';
import { LifecycleModule } from './common/lifecycle/lifecycle.module.js';
import { PINO_LOGGER } from './common/logging/logger.token.js';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import type { MetricsRegistry } from './metrics/metrics.registry.js';
import { RedisModule } from './redis/redis.module.js';
import { ResilienceModule } from './resilience/nest/resilience.module.js';
import { UsersModule } from './users/users.module.js';
import { ProfilesModule } from './profiles/profiles.module.js';
import { NotificationsModule } from './notifications/notifications.module.js';
import { ComputeModule } from './compute/compute.module.js';
import { StreamModule } from './stream/stream.module.js';
import { WebModule } from './web/web.module.js';
import { EventsModule } from './common/events/events.module.js';
import { ChatModule } from './chat/chat.module.js';
import { AuthModule } from './auth/auth.module.js';

export interface AppModuleOptions {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  /** Extra modules mounted beside the features (tests mount probes of the cross-cutting behaviour). */
  readonly extraImports?: readonly Type[];
}

@Module({})
export class AppModule {
  static forRoot({ config, logger, metrics, extraImports = [] }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        MetricsModule.forRoot(metrics),
        LifecycleModule,
        EventsModule,
        RedisModule,
        DatabaseModule,
        ResilienceModule,
        AuthModule,
        HealthModule,
        UsersModule,
        ProfilesModule,
        NotificationsModule,
        ComputeModule,
        StreamModule,
        WebModule,
        ChatModule,
        ...extraImports,
      ],
      providers: [
        { provide: PINO_LOGGER, useValue: logger },
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_FILTER, useFactory: () => new ProblemDetailsFilter(logger) },
      ],
    };
  }
}
