import { Module } from '@nestjs/common';
import { ChatBus } from './chat.bus.js';
import { ChatUpgradeAuthenticator } from './chat-upgrade.authenticator.js';
import { ChatGateway } from './chat.gateway.js';
import { ChatMessagesRepository } from './chat-messages.repository.js';
import { ChatMetrics } from './chat.metrics.js';
import { ChatRooms } from './chat-rooms.service.js';
import { ChatSockets } from './chat-sockets.service.js';
import { TypeOrmChatMessagesRepository } from './typeorm-chat-messages.repository.js';

@Module({
  providers: [
    ChatGateway,
    ChatSockets,
    ChatRooms,
    ChatBus,
    ChatMetrics,
    ChatUpgradeAuthenticator,
    { provide: ChatMessagesRepository, useClass: TypeOrmChatMessagesRepository },
  ],
  exports: [ChatSockets, ChatUpgradeAuthenticator],
})
export class ChatModule {}
