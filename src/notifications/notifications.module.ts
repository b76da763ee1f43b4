import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { PolicyRegistry } from '../resilience/nest/policy.registry.js';
import { FileMailTransport } from './mail/file-mail.transport.js';
import { MailTransport } from './mail/mail-transport.js';
import { SmtpMailTransport } from './mail/smtp-mail.transport.js';
import { NotificationsController } from './notifications.controller.js';
import { NotificationsMetrics } from './notifications.metrics.js';
import { NotificationsRepository } from './notifications.repository.js';
import { NotificationsService } from './notifications.service.js';
import { NotificationsWorker } from './notifications.worker.js';
import { TypeOrmNotificationsRepository } from './typeorm-notifications.repository.js';

/** Durable email notifications: the outbox table, the delivery worker and the mail transports. */
@Module({
  controllers: [NotificationsController],
  providers: [
    NotificationsService,
    NotificationsMetrics,
    NotificationsWorker,
    { provide: NotificationsRepository, useClass: TypeOrmNotificationsRepository },
    {
      provide: MailTransport,
      inject: [AppConfig, PolicyRegistry],
      useFactory: (config: AppConfig, policies: PolicyRegistry): MailTransport => {
        const { url } = config.smtp;
        return url !== undefined
          ? new SmtpMailTransport({ ...config.smtp, url }, policies.get('smtp'), config.notifications.concurrency)
          : new FileMailTransport(config.smtp.outboxDir, config.smtp.from);
      },
    },
  ],
})
export class NotificationsModule {}
