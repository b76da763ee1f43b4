import { CreateUsers1763800000000 } from './1763800000000-create-users.js';
import { CreateNotifications1763900000000 } from './1763900000000-create-notifications.js';
import { CreateChatMessages1764000000000 } from './1764000000000-create-chat-messages.js';
import { NotificationOwners1764100000000 } from './1764100000000-notification-owners.js';
import { ChatAuthors1764200000000 } from './1764200000000-chat-authors.js';

/** Every migration, in order. Listed explicitly: ESM builds cannot be globbed reliably. */
export const MIGRATIONS = [
  CreateUsers1763800000000,
  CreateNotifications1763900000000,
  CreateChatMessages1764000000000,
  NotificationOwners1764100000000,
  ChatAuthors1764200000000,
];
