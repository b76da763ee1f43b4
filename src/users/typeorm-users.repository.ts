import { Injectable } from '@nestjs/common';
import type { Pool, QueryConfig } from 'pg';
import { DataSource, type Repository } from 'typeorm';
import { AppException } from '../common/errors/app.exception.js';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { uniqueViolation } from '../database/database.errors.js';
import { translateUnavailable } from '../database/translate-db-error.js';
import type { NewUser, User, UserPatch } from './user.js';
import { UserEntity } from './user.entity.js';
import { UsersRepository } from './users.repository.js';

const INSERT_SQL = 'INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, name, email, created_at, updated_at';

/** The hot reads, as fixed statements: no query builder or entity hydration per call. */
const FIND_BY_ID = {
  name: 'users_find_by_id',
  text: 'SELECT id, name, email, created_at, updated_at FROM users WHERE id = $1',
};
const LIST_AFTER = {
  name: 'users_list_after',
  text: 'SELECT id, name, email, created_at, updated_at FROM users WHERE id > $1 ORDER BY id ASC LIMIT $2',
};

/** A row as `RETURNING` or the fixed read gives it (snake_case columns) to the domain user. */
const rawToUser = (r: RawUser): User => ({
  id: r.id,
  name: r.name,
  email: r.email,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/**
 * Users in PostgreSQL. Writes go through TypeORM; the two hot reads (by id, a
 * list page) go straight to the pg pool TypeORM owns, skipping its query
 * runner, as named prepared statements (parsed once per connection) unless
 * DB_NAMED_STATEMENTS is off. The embedded PGlite serves every pool
 * connection from one backend session, where a second connection preparing
 * the same name fails (42P05), so there they are always sent unnamed.
 */
@Injectable()
export class TypeOrmUsersRepository extends UsersRepository {
  private readonly repo: Repository<UserEntity>;
  private readonly pool: Pool;
  private readonly named: boolean;

  constructor(dataSource: DataSource, database: Database, config: AppConfig) {
    super();
    this.repo = dataSource.getRepository(UserEntity);
    const pool = database.pool;
    if (pool === undefined) throw new Error('the pg pool behind TypeORM is not there');
    this.pool = pool;
    this.named = config.database.pool.namedStatements;
  }

  async create(user: NewUser): Promise<User> {
    return this.run(async () => {
      // Fixed SQL through TypeORM's DataSource: the query builder cost a tenth of the route's CPU.
      const rows = await this.repo.query<RawUser[]>(INSERT_SQL, [user.name, user.email]);
      const [row] = rows;
      if (row === undefined) throw new Error('INSERT returned no row');
      return rawToUser(row);
    });
  }

  async findById(id: number): Promise<User | undefined> {
    return this.run(async () => {
      const rows = await this.read(FIND_BY_ID, [id]);
      const row = rows[0];
      return row === undefined ? undefined : rawToUser(row);
    });
  }

  async listAfter(afterId: number, limit: number): Promise<User[]> {
    return this.run(async () => {
      const rows = await this.read(LIST_AFTER, [afterId, limit]);
      return rows.map(rawToUser);
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

  private async read(statement: { name: string; text: string }, values: unknown[]): Promise<RawUser[]> {
    const query: QueryConfig = this.named ? { ...statement, values } : { text: statement.text, values };
    return (await this.pool.query<RawUser>(query)).rows;
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
