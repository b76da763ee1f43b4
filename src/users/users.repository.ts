import type { NewUser, User, UserPatch } from './user.js';

/**
 * Port for user storage (the abstract class is the DI token). Implementations
 * throw AppException('email_taken') on a duplicate email and
 * AppException('database_unavailable') when storage cannot answer.
 */
export abstract class UsersRepository {
  abstract create(user: NewUser): Promise<User>;
  abstract findById(id: number): Promise<User | undefined>;
  /** Users with id greater than `afterId`, ascending, at most `limit`. */
  abstract listAfter(afterId: number, limit: number): Promise<User[]>;
  abstract update(id: number, patch: UserPatch): Promise<User | undefined>;
  abstract delete(id: number): Promise<boolean>;
}
