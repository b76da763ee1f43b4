import { Injectable } from '@nestjs/common';
import { AppException } from '../common/errors/app.exception.js';
import { ComputePool } from './compute.pool.js';
import type { Stats } from './stats.worker.mjs';

@Injectable()
export class ProcessDataService {
  constructor(private readonly pool: ComputePool) {}

  /** Statistics of a raw JSON body `{ values }`, parsed and computed on the worker pool. */
  async process(body: Buffer): Promise<Stats> {
    const result = await this.pool.processData(body);
    if (result.ok) return result.stats;
    const detail = result.errors.map((e) => e.message).join('; ');
    throw new AppException(result.reason, detail, { errors: result.errors });
  }
}
