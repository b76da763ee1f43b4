import { Module } from '@nestjs/common';
import { ChatBus } from './chat.bus.js';
import { ChatUpgradeAuthenticator } from './chat-upgrade.authenticator.js';
import { ChatGateway } from './chat.gateway.js';
import { ChatMessagesRepository } from './chat-messages.repository.js';
import { ChatMetrics } from './chat.metrics.js';
import { ChatService } from './chat.service.js';
import { TypeOrmChatMessagesRepository } from './typeorm-chat-messages.repository.js';

@Module({
  providers: [
    ChatGateway,
    ChatService,
    ChatBus,
    ChatMetrics,
    ChatUpgradeAuthenticator,
    { provide: ChatMessagesRepository, useClass: TypeOrmChatMessagesRepository },
  ],
  exports: [ChatService, ChatUpgradeAuthenticator],
})
export class ChatModule {}
