import { Injectable } from '@nestjs/common';
import pLimit from 'p-limit';
import { mapToProblem } from '../common/errors/problem.mapper.js';
import type { ProblemDocument } from '../common/errors/problem-document.js';
import { currentRequestId } from '../common/http/request-context.js';
import { AppConfig } from '../config/app-config.js';
import type { Profile } from './profile.js';
import { profileOf, ProfilesService } from './profiles.service.js';

export type BatchResult =
  | { readonly userId: number; readonly status: 200; readonly profile: Profile }
  | { readonly userId: number; readonly status: number; readonly problem: ProblemDocument };

/** Fetches many profiles, at most PROFILE_BATCH_CONCURRENCY at a time, one result per id, in order. */
@Injectable()
export class ProfilesBatchService {
  constructor(
    private readonly profiles: ProfilesService,
    private readonly config: AppConfig,
  ) {}

  async fetch(userIds: readonly number[], signal?: AbortSignal): Promise<BatchResult[]> {
    const limit = pLimit(this.config.profiles.batchConcurrency);
    const requestId = currentRequestId() ?? '';
    return Promise.all(
      userIds.map((userId) =>
        limit(async (): Promise<BatchResult> => {
          try {
            const profile = profileOf(await this.profiles.get(userId, signal));
            return { userId, status: 200, profile };
          } catch (error) {
            // Each failure becomes that entry's problem; the batch itself still answers 200.
            const { problem } = mapToProblem(error, { instance: `/profiles/${String(userId)}`, requestId });
            return { userId, status: problem.status, problem };
          }
        }),
      ),
    );
  }
}
