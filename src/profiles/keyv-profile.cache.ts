import KeyvRedis from '@keyv/redis';
import { Logger } from '@nestjs/common';
import { createCache, type Cache } from 'cache-manager';
import { Keyv } from 'keyv';
import { withTimeout } from '../common/async/with-timeout.js';
import type { RedisConnection } from '../redis/redis.connection.js';
import { ProfileCache, type CachedProfile } from './profile.cache.js';

const OP_TIMEOUT_MS = 150;

export interface CacheCounters {
  error(op: 'get' | 'set' | 'delete' | 'store'): void;
}

/**
 * The shared profile cache (REDIS_URL set): cache-manager 7 on Keyv with
 * @keyv/redis, so instances share profiles. Every operation is bounded by a
 * short timeout; a Redis outage means no shared cache, never an error.
 * Without Redis the module binds MemoryProfileCache instead.
 */
export class KeyvProfileCache extends ProfileCache {
  private readonly logger = new Logger('ProfileCache');
  private readonly cache: Cache;
  private readonly keyv: Keyv;

  constructor(
    redisUrl: string,
    keyPrefix: string,
    private readonly counters: CacheCounters,
    private readonly failures: RedisConnection,
  ) {
    super();
    this.keyv = new Keyv({
      store: new KeyvRedis(
        {
          url: redisUrl,
          disableOfflineQueue: true,
          socket: { connectTimeout: 1000, reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 2000) },
        },
        { throwOnConnectError: false, throwOnErrors: false, connectionTimeout: 500 },
      ),
      // v2: entries hold the serialised body. A new namespace, so that during a rolling
      // deploy an older instance never reads one (nor this one an older entry).
      namespace: `${keyPrefix}profile-v2`,
      useKeyPrefix: true,
    });
    this.keyv.on('error', (error: unknown) => {
      // Keyv reports store failures here and answers a miss instead of throwing.
      this.counters.error('store');
      this.warn(error);
    });
    this.cache = createCache({ stores: [this.keyv] });
  }

  async get(userId: number): Promise<CachedProfile | undefined> {
    try {
      return (
        (await withTimeout(this.cache.get<CachedProfile>(String(userId)), OP_TIMEOUT_MS, 'cache get')) ?? undefined
      );
    } catch (error) {
      this.counters.error('get');
      this.warn(error);
      return undefined;
    }
  }

  async set(userId: number, entry: CachedProfile, ttlMs: number): Promise<void> {
    try {
      // Redis keeps the JSON text only: the encoded bytes would be stored as a JSON array of numbers.
      const stored: CachedProfile = { body: entry.body, etag: entry.etag, storedAt: entry.storedAt };
      await withTimeout(this.cache.set(String(userId), stored, ttlMs), OP_TIMEOUT_MS, 'cache set');
    } catch (error) {
      this.counters.error('set');
      this.warn(error);
    }
  }

  async delete(userId: number): Promise<void> {
    try {
      await withTimeout(this.cache.del(String(userId)), OP_TIMEOUT_MS, 'cache delete');
    } catch (error) {
      this.counters.error('delete');
      this.warn(error);
    }
  }

  async close(): Promise<void> {
    try {
      await withTimeout(this.cache.disconnect(), 1000, 'cache disconnect');
    } catch {
      // Closing a cache that never connected is not worth a shutdown error.
    }
  }

  private warn(error: unknown): void {
    this.failures.reportFailure(this.logger, 'profile cache unavailable; serving without it', error);
  }
}
