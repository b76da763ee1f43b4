import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import type { Caller } from '../auth/caller.js';
import { upgradeToken } from './chat-upgrade.authenticator.js';
import { chatIdentity, guestName } from './chat.identity.js';

const caller = (overrides: Partial<Caller> = {}): Caller => ({
  sub: 'u-1',
  name: 'Ada',
  scopes: new Set(['chat:write']),
  expiresAt: 1_000,
  ...overrides,
});

describe('chatIdentity', () => {
  it('is the token for a verified caller, posting only with chat:write (or admin)', () => {
    expect(chatIdentity(caller(), false)).toEqual({
      name: 'Ada',
      key: 'u-1',
      guest: false,
      refusal: undefined,
      expiresAt: 1_000,
    });
    expect(chatIdentity(caller({ scopes: new Set(['admin']) }), false).refusal).toBeUndefined();
    expect(chatIdentity(caller({ scopes: new Set(['users:write']) }), true).refusal).toMatchObject({
      code: 'insufficient_scope',
    });
  });

  it('is a guest without a token, posting only where guests may', () => {
    expect(chatIdentity(undefined, true, 'guest-abc123')).toEqual({
      name: 'guest-abc123',
      key: 'guest-abc123',
      guest: true,
      refusal: undefined,
      expiresAt: undefined,
    });
    expect(chatIdentity(undefined, false).refusal).toMatchObject({ code: 'unauthorized' });
    expect(guestName()).toMatch(/^guest-[0-9a-f]{6}$/);
    expect(guestName()).not.toBe(guestName());
  });

  it('never shows or stores control characters or a split surrogate pair from a token', () => {
    expect(chatIdentity(caller({ name: 'A\u0000da\u001b\ud83d' }), true).name).toBe('Ada');
    expect(chatIdentity(caller({ name: '\u0007', sub: 'sub-2' }), true).name).toBe('sub-2');
    expect(chatIdentity(caller({ name: '\u0007', sub: '\u0000' }), true)).toMatchObject({
      name: 'user',
      key: '\ufffd',
    });
  });
});

describe('upgradeToken', () => {
  const request = (url: string, authorization?: string) =>
    ({ url, headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;

  it('reads the Authorization header first, then ?access_token=', () => {
    expect(upgradeToken(request('/ws'))).toBeUndefined();
    expect(upgradeToken(request('/ws', 'Bearer abc.def'))).toBe('abc.def');
    expect(upgradeToken(request('/ws?access_token=q', 'Bearer h'))).toBe('h');
    expect(upgradeToken(request('/ws?room=x&access_token=q.r'))).toBe('q.r');
  });

  it('takes a malformed credential for a bad one, never for none', () => {
    expect(upgradeToken(request('/ws', 'Basic dXNlcg=='))).toBe(false);
    expect(upgradeToken(request('/ws?access_token='))).toBe(false);
    expect(upgradeToken(request('/ws?access_token=a&access_token=b'))).toBe(false);
  });
});
