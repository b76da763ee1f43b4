import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { ParseIdPipe } from '../common/http/parse-id.pipe.js';
import { RequestSignal } from '../resilience/nest/request-signal.js';
import { BatchProfilesDto } from './dto/batch-profiles.dto.js';
import { BatchResponseDto, ProfileDto } from './dto/profile.dto.js';
import { ProfilesBatchService, type BatchResult } from './profiles-batch.service.js';
import { ProfilesService } from './profiles.service.js';
import { PublicRead } from '../auth/access.decorators.js';

const matches = (ifNoneMatch: string | undefined, etag: string): boolean =>
  ifNoneMatch !== undefined &&
  (ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag));

@ApiTags('profiles')
@ApiProblems(500, 503)
@Controller('profiles')
export class ProfilesController {
  constructor(
    private readonly profiles: ProfilesService,
    private readonly batch: ProfilesBatchService,
  ) {}

  @Get(':userId')
  @PublicRead()
  @ApiOkResponse({ type: ProfileDto, description: 'X-Cache: HIT | MISS | STALE; X-Degraded lists missing parts; ETag' })
  @ApiResponse({ status: 304, description: 'If-None-Match matched the ETag' })
  @ApiHeader({ name: 'If-None-Match', required: false })
  @ApiProblems(400, 404, 504)
  async get(
    @Param('userId', new ParseIdPipe('userId')) userId: number,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @RequestSignal() signal: AbortSignal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer | undefined> {
    // The body arrives serialised (the ETag hashes those bytes): it is sent as it is.
    const { body, degraded, cache, etag } = await this.profiles.get(userId, signal);
    void reply.header('x-cache', cache).header('etag', etag).header('cache-control', 'private, no-cache');
    if (degraded.length > 0) void reply.header('x-degraded', degraded.join(', '));
    if (matches(ifNoneMatch, etag)) {
      void reply.status(304);
      return undefined;
    }
    void reply.type('application/json; charset=utf-8');
    return body;
  }

  @Post('batch')
  @PublicRead()
  @HttpCode(200)
  @ApiOkResponse({ type: BatchResponseDto, description: 'One result per id, in order: a profile or a problem' })
  @ApiProblems(400, 413, 415)
  async getMany(
    @Body() body: BatchProfilesDto,
    @RequestSignal() signal: AbortSignal,
  ): Promise<{ results: BatchResult[] }> {
    return { results: await this.batch.fetch(body.userIds, signal) };
  }
}
