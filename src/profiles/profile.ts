import type { UserDto } from '../users/dto/user.dto.js';

/** A post as the posts service (JSONPlaceholder shape) returns it. */
export interface Post {
  readonly userId: number;
  readonly id: number;
  readonly title: string;
  readonly body: string;
}

/** A comment as the comments service returns it. */
export interface Comment {
  readonly postId: number;
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly body: string;
}

export type UpstreamName = 'posts' | 'comments';

export interface Profile {
  readonly user: UserDto;
  readonly posts: readonly Post[];
  readonly comments: readonly Comment[];
  /** Upstreams whose part is missing (failed, timed out, breaker open). */
  readonly degraded: readonly UpstreamName[];
  /** Present when served from a stale cache entry because an upstream failed. */
  readonly stale?: true;
}

export type CacheStatus = 'HIT' | 'MISS' | 'STALE';
