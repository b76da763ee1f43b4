import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { AppException } from '../common/errors/app.exception.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { currentRequestId } from '../common/http/request-context.js';
import { AppConfig } from '../config/app-config.js';
import { CancelledError, TimeoutError } from '../resilience/resilience.errors.js';
import { UserDto } from '../users/dto/user.dto.js';
import { UsersService } from '../users/users.service.js';
import { ProfileCache } from './profile.cache.js';
import { ProfileMetrics } from './profile.metrics.js';
import type { CacheStatus, Comment, Post, Profile, UpstreamName } from './profile.js';
import { CommentsUpstream, PostsUpstream, type UpstreamCall } from './upstream.port.js';

export interface ProfileResult {
  /** The response body, serialised once: a {@link Profile} as JSON in UTF-8, what the ETag hashes. */
  readonly body: Buffer;
  /** Upstreams whose part is missing (the body's `degraded`). */
  readonly degraded: readonly UpstreamName[];
  readonly cache: CacheStatus;
  readonly etag: string;
  /** The profile as an object, when the result was built from one (not a cache hit). */
  readonly profile?: Profile;
}

const DEADLINE = Symbol('deadline');
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown } | typeof DEADLINE;

const etagOf = (bytes: Buffer): string => `"${createHash('sha1').update(bytes).digest('base64url')}"`;

/** A fresh profile, serialised and encoded once, with the ETag of those bytes. */
interface Fresh {
  readonly profile: Profile;
  /** The JSON text, as the shared cache stores it. */
  readonly json: string;
  readonly body: Buffer;
  readonly etag: string;
}

const serialise = (profile: Profile): Fresh => {
  const json = JSON.stringify(profile);
  const body = Buffer.from(json);
  return { profile, json, body, etag: etagOf(body) };
};

/**
 * The stored body of a complete profile ends with `"degraded":[]}` (the last
 * field); a stale answer is that body with `"stale":true` added, the same
 * bytes `JSON.stringify` gives the profile with `stale: true` added last.
 */
const staleBodyOf = (body: string): string => `${body.slice(0, -1)},"stale":true}`;

/** The profile of a result, parsing the body when the result came from the cache. */
export const profileOf = (result: ProfileResult): Profile =>
  result.profile ?? (JSON.parse(result.body.toString('utf8')) as Profile);

/**
 * Aggregates a user (this service's database) with their posts and comments
 * (two HTTP upstreams), all three started together and bounded by one
 * deadline; a failed or late upstream degrades its part instead of failing
 * the profile. Complete profiles are cached; concurrent misses share one round.
 */
@Injectable()
export class ProfilesService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ProfilesService.name);
  private readonly inFlight = new Map<number, Promise<Fresh>>();
  private unsubscribe: (() => void)[] = [];

  constructor(
    private readonly users: UsersService,
    private readonly posts: PostsUpstream,
    private readonly comments: CommentsUpstream,
    private readonly cache: ProfileCache,
    private readonly config: AppConfig,
    private readonly metrics: ProfileMetrics,
    private readonly events: DomainEvents,
  ) {}

  onModuleInit(): void {
    const evict = ({ userId }: { userId: number }) => {
      fireAndForget(this.cache.delete(userId), this.logger, 'evict profile');
    };
    this.unsubscribe = [this.events.subscribe('user.updated', evict), this.events.subscribe('user.deleted', evict)];
  }

  async onApplicationShutdown(): Promise<void> {
    for (const off of this.unsubscribe) off();
    await this.cache.close();
  }

  async get(userId: number, signal?: AbortSignal): Promise<ProfileResult> {
    const { cacheTtlMs, staleTtlMs } = this.config.profiles;
    const cacheOn = cacheTtlMs > 0;
    const lookup = cacheOn ? this.cache.get(userId) : undefined;
    // An in-memory hit answers without a single await before the reply.
    const stored = lookup instanceof Promise ? await lookup : lookup;
    // An entry written by an older release (no serialised body) counts as a miss.
    const cached = typeof stored?.body === 'string' ? stored : undefined;
    if (cached !== undefined && Date.now() - cached.storedAt < cacheTtlMs) {
      this.metrics.cache('HIT');
      // In memory the entry keeps its UTF-8 bytes: a hit writes them as they are.
      return { body: cached.bytes ?? Buffer.from(cached.body), degraded: [], cache: 'HIT', etag: cached.etag };
    }

    const fresh = await this.untilAborted(this.shared(userId), signal);
    const { degraded } = fresh.profile;
    if (degraded.length === 0) {
      this.metrics.cache('MISS');
      return { ...fresh, degraded, cache: 'MISS' };
    }
    // An upstream failed: a recent complete profile beats a degraded one.
    if (cached !== undefined && Date.now() - cached.storedAt < cacheTtlMs + staleTtlMs) {
      this.metrics.cache('STALE');
      const body = Buffer.from(staleBodyOf(cached.body));
      return { body, degraded: [], cache: 'STALE', etag: etagOf(body) };
    }
    this.metrics.cache('MISS');
    return { ...fresh, degraded, cache: 'MISS' };
  }

  /** Single flight: concurrent requests for one user share one round of upstream calls. */
  private shared(userId: number): Promise<Fresh> {
    const existing = this.inFlight.get(userId);
    if (existing !== undefined) {
      this.metrics.joined();
      return existing;
    }
    // The round ends once the cache holds its result, so a request whose cache read
    // missed just before the write still finds the round and joins it.
    const round = this.assemble(userId)
      .then(async (profile) => {
        // Serialised once per round: every request that joined it sends these bytes.
        const fresh = serialise(profile);
        const { cacheTtlMs, staleTtlMs } = this.config.profiles;
        if (cacheTtlMs > 0 && profile.degraded.length === 0) {
          await this.cache.set(
            userId,
            { body: fresh.json, bytes: fresh.body, etag: fresh.etag, storedAt: Date.now() },
            cacheTtlMs + staleTtlMs,
          );
        }
        return fresh;
      })
      .finally(() => {
        this.inFlight.delete(userId);
      });
    this.inFlight.set(userId, round);
    return round;
  }

  private async assemble(userId: number): Promise<Profile> {
    const { deadlineMs } = this.config.profiles;
    // The shared round has its own signal: one impatient caller must not cancel it for the others.
    const controller = new AbortController();
    const deadlineAt = Date.now() + deadlineMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<typeof DEADLINE>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new TimeoutError('profile', deadlineMs, 'deadline'));
        resolve(DEADLINE);
      }, deadlineMs);
    });
    const call: UpstreamCall = { signal: controller.signal, deadlineAt, requestId: currentRequestId() };
    const settle = <T>(work: Promise<T>): Promise<Settled<T>> =>
      Promise.race([
        work.then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
        deadline,
      ]);

    // Once every part has settled or the deadline has aborted them, nothing is left to cancel.
    let settledAll = false;
    try {
      const user = this.users.get(userId);
      // No user, no profile: stop the upstream calls at once.
      void user.catch(() => {
        controller.abort(new CancelledError('profile', 'user lookup failed'));
      });
      const [u, p, c] = await Promise.all([
        settle(user),
        settle(this.posts.postsOf(userId, call)),
        settle(this.comments.commentsOf(userId, call)),
      ]);
      settledAll = true;
      if (u === DEADLINE)
        throw new AppException('gateway_timeout', 'The user record did not arrive before the deadline');
      if (!u.ok) throw u.error;
      const degraded: UpstreamName[] = [];
      const part = <T>(name: UpstreamName, settled: Settled<T[]>): T[] => {
        if (settled !== DEADLINE && settled.ok) return settled.value;
        degraded.push(name);
        this.metrics.degradedPart(name);
        return [];
      };
      const posts = part<Post>('posts', p);
      const comments = part<Comment>('comments', c);
      return { user: UserDto.from(u.value), posts, comments, degraded };
    } finally {
      clearTimeout(timer);
      if (!settledAll && !controller.signal.aborted) {
        controller.abort(new CancelledError('profile', 'profile assembly failed'));
      }
    }
  }

  /** Lets a caller stop waiting (client gone) without cancelling the shared work. */
  private untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal === undefined) return work;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      void work.then(resolve, reject).finally(() => {
        signal.removeEventListener('abort', onAbort);
      });
    });
  }
}
