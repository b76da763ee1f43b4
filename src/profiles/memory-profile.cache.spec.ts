import { describe, expect, it } from '@jest/globals';
import { MemoryProfileCache } from './memory-profile.cache.js';

const entry = (n: number) => ({ body: `{"n":${String(n)}}`, etag: `"e${String(n)}"`, storedAt: n });

describe('MemoryProfileCache', () => {
  it('answers a hit synchronously, with the body already encoded', async () => {
    const cache = new MemoryProfileCache();
    const stored = entry(1);
    await cache.set(7, stored, 1_000);
    const hit = cache.get(7);
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toMatchObject(stored);
    expect(hit?.bytes?.toString('utf8')).toBe(stored.body);
    // Read again, the same bytes: nothing is encoded per hit.
    expect(cache.get(7)?.bytes).toBe(hit?.bytes);
    expect(cache.get(8)).toBeUndefined();
  });

  it('drops an entry once its TTL has passed', async () => {
    let now = 10_000;
    const cache = new MemoryProfileCache(() => now);
    await cache.set(1, entry(1), 500);
    now += 499;
    expect(cache.get(1)).toBeDefined();
    now += 1;
    expect(cache.get(1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('evicts on delete and empties on close', async () => {
    const cache = new MemoryProfileCache();
    await cache.set(1, entry(1), 1_000);
    await cache.set(2, entry(2), 1_000);
    await cache.delete(1);
    expect(cache.get(1)).toBeUndefined();
    expect(cache.get(2)).toBeDefined();
    await cache.close();
    expect(cache.size).toBe(0);
  });
});
