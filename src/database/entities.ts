import { ChatMessageEntity } from '../chat/chat-message.entity.js';
import { NotificationEntity } from '../notifications/notification.entity.js';
import { UserEntity } from '../users/user.entity.js';

/** Every TypeORM entity the service maps. */
export const ENTITIES = [UserEntity, NotificationEntity, ChatMessageEntity];
