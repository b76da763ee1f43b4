import type { ChatMessage } from './chat.protocol.js';

export interface NewChatMessage {
  readonly room: string;
  /** The name shown. */
  readonly author: string;
  /** Whose message: the token's `sub`, or the guest name. */
  readonly authorKey: string;
  readonly guest: boolean;
  readonly text: string;
  readonly clientMsgId: string | undefined;
}

/**
 * Port for chat message storage (the abstract class is the DI token).
 * Implementations throw AppException('database_unavailable') when storage cannot answer.
 */
export abstract class ChatMessagesRepository {
  /**
   * Stores a message. With a `clientMsgId` already stored for the same room and
   * author (`authorKey` and `guest`), stores nothing and returns that earlier message with `created: false`.
   */
  abstract append(message: NewChatMessage): Promise<{ message: ChatMessage; created: boolean }>;
  /** The last `limit` messages of a room, oldest first. */
  abstract latest(room: string, limit: number): Promise<ChatMessage[]>;
  /** Messages of a room with id > `afterId`, oldest first, at most `limit`. */
  abstract after(room: string, afterId: number, limit: number): Promise<ChatMessage[]>;
}
