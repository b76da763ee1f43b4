import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsIn, IsOptional, IsString, Matches } from 'class-validator';
import { DOMAIN_EVENT_TYPES } from '../../common/events/domain-events.js';

export class EventsQuery {
  @ApiPropertyOptional({ description: `Comma-separated event types: ${DOMAIN_EVENT_TYPES.join(', ')}` })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '')
      : value,
  )
  @ArrayMaxSize(DOMAIN_EVENT_TYPES.length)
  @IsIn(DOMAIN_EVENT_TYPES, { each: true, message: `types must be among ${DOMAIN_EVENT_TYPES.join(', ')}` })
  types?: string[];

  @ApiPropertyOptional({ description: 'Resume after this event id (for clients that cannot send Last-Event-ID)' })
  @IsOptional()
  @IsString()
  @Matches(/^\d{1,15}$/, { message: 'lastEventId must be an event id' })
  lastEventId?: string;
}
