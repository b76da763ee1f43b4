import { Module } from '@nestjs/common';
import { EventHub } from './event-hub.js';
import { StreamController } from './stream.controller.js';
import { StreamMetrics } from './stream.metrics.js';
import { StreamService } from './stream.service.js';

/** Server-Sent Events: the finite /stream and the live /events with replay. */
@Module({
  controllers: [StreamController],
  providers: [EventHub, StreamService, StreamMetrics],
  exports: [EventHub],
})
export class StreamModule {}
