import { ApiProperty } from '@nestjs/swagger';
import { NOTIFICATION_STATUSES, type Notification, type NotificationStatus } from '../notification.js';

export class NotificationAcceptedDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['queued'] }) status!: 'queued';
}

export class NotificationDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: NOTIFICATION_STATUSES }) status!: NotificationStatus;
  @ApiProperty({ example: 1, description: 'Delivery attempts started so far' }) attempts!: number;
  @ApiProperty({ type: String, nullable: true, description: 'Why the last attempt failed' })
  lastError!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) deliveredAt!: string | null;

  static from(n: Notification): NotificationDto {
    return {
      id: n.id,
      status: n.status,
      attempts: n.attempts,
      lastError: n.lastError,
      createdAt: n.createdAt.toISOString(),
      deliveredAt: n.deliveredAt === null ? null : n.deliveredAt.toISOString(),
    };
  }
}
