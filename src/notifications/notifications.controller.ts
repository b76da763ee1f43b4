import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { CreateNotificationDto } from './dto/create-notification.dto.js';
import { NotificationAcceptedDto, NotificationDto } from './dto/notification.dto.js';
import { NotificationsService } from './notifications.service.js';
import { ParseUuidPipe } from './parse-uuid.pipe.js';
import { Authenticated, Scopes } from '../auth/access.decorators.js';
import type { Caller } from '../auth/caller.js';
import { CurrentCaller } from '../auth/current-caller.decorator.js';

@ApiTags('notifications')
@ApiProblems(500, 503)
@Controller('notifications')
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @Post()
  @Scopes('notifications:write')
  @HttpCode(202)
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Replays of the same request with the same key return the first answer; another body is a 409',
  })
  @ApiAcceptedResponse({ type: NotificationAcceptedDto, description: 'Stored durably; delivery follows' })
  @ApiProblems(400, 409, 413, 415)
  async create(
    @Body() body: CreateNotificationDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentCaller() caller: Caller,
  ): Promise<NotificationAcceptedDto> {
    const { notification, replayed } = await this.notifications.enqueue(body, idempotencyKey, caller);
    if (replayed) void reply.header('idempotent-replayed', 'true');
    void reply.header('location', `/notifications/${notification.id}`);
    return { id: notification.id, status: 'queued' };
  }

  @Get(':id')
  @Authenticated()
  @ApiOkResponse({ type: NotificationDto })
  @ApiProblems(400, 404)
  async get(@Param('id', ParseUuidPipe) id: string, @CurrentCaller() caller: Caller): Promise<NotificationDto> {
    return NotificationDto.from(await this.notifications.get(id, caller));
  }
}
