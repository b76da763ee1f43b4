import { Module } from '@nestjs/common';
import { ComputePool } from './compute.pool.js';
import { ProcessDataController } from './process-data.controller.js';
import { ProcessDataService } from './process-data.service.js';

/** CPU-bound work on a worker-thread pool: POST /process-data. */
@Module({
  controllers: [ProcessDataController],
  providers: [ComputePool, ProcessDataService],
})
export class ComputeModule {}
