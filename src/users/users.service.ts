import { Injectable, Logger } from '@nestjs/common';
import { AppException } from '../common/errors/app.exception.js';
import { DomainEvents } from '../common/events/domain-events.js';
import type { NewUser, User, UserPatch } from './user.js';
import { decodeCursor, encodeCursor } from './users.cursor.js';
import { UsersRepository } from './users.repository.js';

export const DEFAULT_PAGE_SIZE = 20;

@Injectable()
export class UsersService {
  private readonly logger = new Logger(UsersService.name);

  constructor(
    private readonly users: UsersRepository,
    private readonly events: DomainEvents,
  ) {}

  async create(input: NewUser): Promise<User> {
    const user = await this.users.create(input);
    // Debug, not info: every creation is already a `user.created` event on /events, and a line per
    // insert was a twentieth of POST /users' CPU. Deletions, rare and destructive, stay at info.
    this.logger.debug({ userId: user.id }, 'user created');
    this.events.publish('user.created', { userId: user.id });
    return user;
  }

  async get(id: number): Promise<User> {
    const user = await this.users.findById(id);
    if (user === undefined) throw notFound(id);
    return user;
  }

  async list(limit = DEFAULT_PAGE_SIZE, cursor?: string): Promise<{ items: User[]; nextCursor: string | null }> {
    const afterId = cursor === undefined ? 0 : decodeCursor(cursor);
    // One extra row tells whether another page exists without a COUNT.
    const rows = await this.users.listAfter(afterId, limit + 1);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null };
  }

  async update(id: number, patch: UserPatch): Promise<User> {
    if (patch.name === undefined && patch.email === undefined) {
      throw new AppException('validation_failed', 'The body must change at least one of name, email', {
        errors: [{ field: 'body', message: 'at least one of name, email is required' }],
      });
    }
    const user = await this.users.update(id, patch);
    if (user === undefined) throw notFound(id);
    this.events.publish('user.updated', { userId: id });
    return user;
  }

  async remove(id: number): Promise<void> {
    if (!(await this.users.delete(id))) throw notFound(id);
    this.logger.log({ userId: id }, 'user deleted');
    this.events.publish('user.deleted', { userId: id });
  }
}

const notFound = (id: number) => new AppException('user_not_found', `No user with id ${String(id)}`);
