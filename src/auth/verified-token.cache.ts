import { LRUCache } from 'lru-cache';
import { createHash } from 'node:crypto';
import type { Caller } from './caller.js';

/** The cache key of a token: a digest, so the cache never holds a usable credential. */
export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('base64url');

/**
 * Verified tokens by digest, each kept until its `exp` (and at most `max`
 * of them, least recently used out first): a repeated token costs a hash
 * and a lookup instead of a signature check.
 */
export class VerifiedTokenCache {
  private readonly entries: LRUCache<string, Caller> | undefined;

  constructor(max: number) {
    this.entries = max > 0 ? new LRUCache<string, Caller>({ max }) : undefined;
  }

  get(digest: string, now = Date.now()): Caller | undefined {
    const caller = this.entries?.get(digest);
    if (caller === undefined) return undefined;
    if (caller.expiresAt !== undefined && caller.expiresAt <= now) {
      this.entries?.delete(digest);
      return undefined;
    }
    return caller;
  }

  set(digest: string, caller: Caller): void {
    this.entries?.set(digest, caller);
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }
}
