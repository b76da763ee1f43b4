import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ShutdownHealthIndicator } from './shutdown.health.js';
import { ShutdownState } from './shutdown-state.js';

@Global()
@Module({
  imports: [TerminusModule],
  providers: [ShutdownState, ShutdownHealthIndicator],
  exports: [ShutdownState, ShutdownHealthIndicator],
})
export class LifecycleModule {}
