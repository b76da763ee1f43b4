import { BoundedMap } from './bounded-map.js';
import { ProfileCache, type CachedProfile } from './profile.cache.js';

const MAX_ENTRIES = 50_000;

interface Slot {
  readonly entry: CachedProfile;
  readonly expiresAt: number;
}

/**
 * The profile cache of a single instance (no REDIS_URL): an LRU of at most
 * 50,000 entries, each dropped once its TTL has passed. A hit is answered
 * synchronously: cache-manager and Keyv in front of a Map cost a cached
 * profile more than the rest of its route (promises, hooks, a timeout per
 * read), and nothing here can be slow or fail.
 */
export class MemoryProfileCache extends ProfileCache {
  private readonly slots = new BoundedMap<number, Slot>(MAX_ENTRIES);

  constructor(private readonly now: () => number = Date.now) {
    super();
  }

  get(userId: number): CachedProfile | undefined {
    const slot = this.slots.get(userId);
    if (slot === undefined) return undefined;
    if (slot.expiresAt <= this.now()) {
      this.slots.delete(userId);
      return undefined;
    }
    return slot.entry;
  }

  async set(userId: number, entry: CachedProfile, ttlMs: number): Promise<void> {
    const stored = entry.bytes === undefined ? { ...entry, bytes: Buffer.from(entry.body) } : entry;
    this.slots.set(userId, { entry: stored, expiresAt: this.now() + ttlMs });
  }

  async delete(userId: number): Promise<void> {
    this.slots.delete(userId);
  }

  async close(): Promise<void> {
    this.slots.clear();
  }

  /** Entries kept (expired ones linger until read or pushed out). */
  get size(): number {
    return this.slots.size;
  }
}
