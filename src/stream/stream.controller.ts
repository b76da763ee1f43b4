import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { EventsQuery } from './dto/events.query.js';
import { StreamQuery } from './dto/stream.query.js';
import { StreamService } from './stream.service.js';
import { PublicRead, TokenInQuery } from '../auth/access.decorators.js';
import type { Caller } from '../auth/caller.js';
import { CurrentCaller } from '../auth/current-caller.decorator.js';

@ApiTags('streams')
@Controller()
export class StreamController {
  constructor(private readonly streams: StreamService) {}

  @Get('stream')
  @PublicRead()
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description: '`count` events `data: {"item": i, "value": "data_i"}` with `id: i`, then the stream ends',
  })
  @ApiProblems(400)
  async stream(@Query() query: StreamQuery, @Res() reply: FastifyReply): Promise<void> {
    await this.streams.finite(reply, query.count ?? 1000, query.intervalMs ?? 10);
  }

  @Get('events')
  @PublicRead()
  @TokenInQuery()
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description: 'Live domain events (`id`, `event`, JSON `data`); resumes after Last-Event-ID; `reset` when too old',
  })
  @ApiProblems(400)
  async events(
    @Query() query: EventsQuery,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Res() reply: FastifyReply,
    @CurrentCaller() caller: Caller | undefined,
  ): Promise<void> {
    const lastEventId = (lastEventIdHeader ?? query.lastEventId)?.trim();
    await this.streams.events(reply, query.types === undefined ? undefined : new Set(query.types), lastEventId, caller);
  }
}
