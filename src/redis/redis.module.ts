import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RedisConnection } from './redis.connection.js';
import { RedisHealthIndicator } from './redis.health.js';

@Global()
@Module({
  imports: [TerminusModule],
  providers: [RedisConnection, RedisHealthIndicator],
  exports: [RedisConnection, RedisHealthIndicator],
})
export class RedisModule {}
