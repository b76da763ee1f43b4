/** A complete profile as stored: never a degraded one. */
export interface CachedProfile {
  /** The profile serialised as sent (`degraded: []` last), so a hit sends these bytes as they are. */
  readonly body: string;
  /** `body` encoded as UTF-8, where the store keeps it (in memory): a hit then writes it without encoding. */
  readonly bytes?: Buffer;
  /** ETag of `body`. */
  readonly etag: string;
  /** Epoch ms when it was stored; fresh until storedAt + PROFILE_CACHE_TTL_MS. */
  readonly storedAt: number;
}

/**
 * Port of the profile cache (the abstract class is the DI token). It never
 * throws: a cache that cannot answer is a miss, and a failed write is dropped.
 */
export abstract class ProfileCache {
  /** The entry, synchronously where the store allows it (in memory), else a promise of it. */
  abstract get(userId: number): CachedProfile | undefined | Promise<CachedProfile | undefined>;
  abstract set(userId: number, entry: CachedProfile, ttlMs: number): Promise<void>;
  abstract delete(userId: number): Promise<void>;
  abstract close(): Promise<void>;
}
