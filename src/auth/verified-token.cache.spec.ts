import { describe, expect, it } from '@jest/globals';
import type { Caller } from './caller.js';
import { tokenDigest, VerifiedTokenCache } from './verified-token.cache.js';

const caller = (sub: string, expiresAt: number | undefined): Caller => ({
  sub,
  name: sub,
  scopes: new Set(),
  expiresAt,
});

describe('VerifiedTokenCache', () => {
  it('keys by a digest that is not the token', () => {
    const digest = tokenDigest('header.payload.signature');
    expect(digest).toMatch(/^[\w-]{43}$/);
    expect(digest).not.toContain('payload');
    expect(tokenDigest('header.payload.signature')).toBe(digest);
  });

  it('answers a caller until its expiry, then forgets it', () => {
    const cache = new VerifiedTokenCache(10);
    cache.set('a', caller('a', 2000));
    expect(cache.get('a', 1999)?.sub).toBe('a');
    expect(cache.get('a', 2000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps callers without an expiry and holds at most max entries, least recently used out first', () => {
    const cache = new VerifiedTokenCache(2);
    cache.set('a', caller('a', undefined));
    cache.set('b', caller('b', undefined));
    expect(cache.get('a', 0)?.sub).toBe('a');
    cache.set('c', caller('c', undefined));
    expect(cache.get('b', 0)).toBeUndefined();
    expect(cache.get('a', Number.MAX_SAFE_INTEGER)?.sub).toBe('a');
    expect(cache.size).toBe(2);
  });

  it('remembers nothing with size 0', () => {
    const cache = new VerifiedTokenCache(0);
    cache.set('a', caller('a', undefined));
    expect(cache.get('a', 0)).toBeUndefined();
  });
});
