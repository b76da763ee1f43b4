import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller.js';
import { LivenessSnapshot } from './liveness.snapshot.js';
import { ProcessHealthIndicator } from './process.health.js';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' })],
  controllers: [HealthController],
  providers: [ProcessHealthIndicator, LivenessSnapshot],
  exports: [LivenessSnapshot],
})
export class HealthModule {}
