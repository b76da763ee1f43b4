import { Injectable } from '@nestjs/common';
import { DataSource, MoreThan, type Repository } from 'typeorm';
import { translateUnavailable } from '../database/translate-db-error.js';
import { ChatMessageEntity } from './chat-message.entity.js';
import { ChatMessagesRepository, type NewChatMessage } from './chat-messages.repository.js';
import type { ChatMessage } from './chat.protocol.js';

interface RawChatMessage {
  id: string | number;
  room: string;
  author: string;
  guest: boolean;
  text: string;
  created_at: string | Date;
}

type StoredMessage = Pick<ChatMessageEntity, 'room' | 'author' | 'guest' | 'text' | 'createdAt'> & {
  id: string | number;
};

const toMessage = (e: StoredMessage): ChatMessage => ({
  id: Number(e.id),
  room: e.room,
  author: e.author,
  guest: e.guest,
  text: e.text,
  ts: e.createdAt.toISOString(),
});

@Injectable()
export class TypeOrmChatMessagesRepository extends ChatMessagesRepository {
  private readonly repo: Repository<ChatMessageEntity>;

  constructor(dataSource: DataSource) {
    super();
    this.repo = dataSource.getRepository(ChatMessageEntity);
  }

  async append(message: NewChatMessage): Promise<{ message: ChatMessage; created: boolean }> {
    return this.run(async () => {
      const result = await this.repo
        .createQueryBuilder()
        .insert()
        .values({
          room: message.room,
          author: message.author,
          authorKey: message.authorKey,
          guest: message.guest,
          text: message.text,
          clientMsgId: message.clientMsgId ?? null,
        })
        // ON CONFLICT DO NOTHING: a resend of an acknowledged message stores nothing.
        .orIgnore()
        .returning(['id', 'room', 'author', 'guest', 'text', 'created_at'])
        .execute();
      const [row] = result.raw as RawChatMessage[];
      if (row !== undefined) {
        return { message: toMessage({ ...row, createdAt: new Date(row.created_at) }), created: true };
      }
      if (message.clientMsgId === undefined) throw new Error('INSERT returned no row');
      const existing = await this.repo.findOneBy({
        room: message.room,
        guest: message.guest,
        authorKey: message.authorKey,
        clientMsgId: message.clientMsgId,
      });
      if (existing === null) throw new Error('duplicate chat message vanished');
      return { message: toMessage(existing), created: false };
    });
  }

  async latest(room: string, limit: number): Promise<ChatMessage[]> {
    return this.run(async () => {
      const rows = await this.repo.find({ where: { room }, order: { id: 'DESC' }, take: limit });
      return rows.reverse().map(toMessage);
    });
  }

  async after(room: string, afterId: number, limit: number): Promise<ChatMessage[]> {
    return this.run(async () => {
      const rows = await this.repo.find({
        where: { room, id: MoreThan(String(afterId)) },
        order: { id: 'ASC' },
        take: limit,
      });
      return rows.map(toMessage);
    });
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw translateUnavailable(error);
    }
  }
}
