import { Injectable } from '@nestjs/common';
import { DataSource, MoreThan, type Repository } from 'typeorm';
import { AppException } from '../common/errors/app.exception.js';
import { uniqueViolation } from '../database/database.errors.js';
import { translateUnavailable } from '../database/translate-db-error.js';
import type { NewUser, User, UserPatch } from './user.js';
import { UserEntity } from './user.entity.js';
import { UsersRepository } from './users.repository.js';

const toUser = (e: UserEntity): User => ({
  id: e.id,
  name: e.name,
  email: e.email,
  createdAt: e.createdAt,
  updatedAt: e.updatedAt,
});

const FIND_BY_ID_SQL = 'SELECT id, name, email, created_at, updated_at FROM users WHERE id = $1';

/** A row as `RETURNING` or the fixed read gives it (snake_case columns) to the domain user. */
const rawToUser = (r: RawUser): User => ({
  id: r.id,
  name: r.name,
  email: r.email,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

@Injectable()
export class TypeOrmUsersRepository extends UsersRepository {
  private readonly repo: Repository<UserEntity>;

  constructor(dataSource: DataSource) {
    super();
    this.repo = dataSource.getRepository(UserEntity);
  }

  async create(user: NewUser): Promise<User> {
    return this.run(async () => {
      const rows = await this.repo
        .createQueryBuilder()
        .insert()
        .values({ name: user.name, email: user.email })
        .returning('*')
        .execute();
      const [row] = rows.raw as RawUser[];
      if (row === undefined) throw new Error('INSERT returned no row');
      return rawToUser(row);
    });
  }

  async findById(id: number): Promise<User | undefined> {
    return this.run(async () => {
      // The hottest read (every GET /users/:id and profile): one fixed statement instead of a query
      // builder and entity hydration per call, about a fifth of the route's CPU (BENCHMARKS.md).
      const rows = await this.repo.query<RawUser[]>(FIND_BY_ID_SQL, [id]);
      const row = rows[0];
      return row === undefined ? undefined : rawToUser(row);
    });
  }

  async listAfter(afterId: number, limit: number): Promise<User[]> {
    return this.run(async () => {
      const rows = await this.repo.find({ where: { id: MoreThan(afterId) }, order: { id: 'ASC' }, take: limit });
      return rows.map(toUser);
    });
  }

  async update(id: number, patch: UserPatch): Promise<User | undefined> {
    return this.run(async () => {
      const result = await this.repo
        .createQueryBuilder()
        .update()
        .set({ ...patch, updatedAt: () => 'now()' })
        .where('id = :id', { id })
        .returning('*')
        .execute();
      const [row] = result.raw as RawUser[];
      return row === undefined ? undefined : rawToUser(row);
    });
  }

  async delete(id: number): Promise<boolean> {
    return this.run(async () => {
      const result = await this.repo.delete({ id });
      return (result.affected ?? 0) > 0;
    });
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (uniqueViolation(error) !== undefined) {
        throw new AppException('email_taken', 'A user with this email address already exists', {
          errors: [{ field: 'email', message: 'email is already in use' }],
        });
      }
      throw translateUnavailable(error);
    }
  }
}

interface RawUser {
  id: number;
  name: string;
  email: string;
  created_at: string | Date;
  updated_at: string | Date;
}
