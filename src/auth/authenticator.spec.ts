import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '../config/load-config.js';
import { Authenticator, bearerToken, credentialOf, OPERATOR } from './authenticator.js';
import type { Caller } from './caller.js';
import { InvalidTokenError } from './token.errors.js';
import { TokenVerifier } from './token-verifier.js';

class CountingVerifier extends TokenVerifier {
  calls = 0;
  async verify(token: string): Promise<Caller> {
    this.calls++;
    if (token === 'bad') throw new InvalidTokenError('invalid');
    return { sub: token, name: token, scopes: new Set(['chat:write']), expiresAt: Date.now() + 60_000 };
  }
}

const OPERATOR_TOKEN = 'operator-token-0123456789';

const make = (size = '100') => {
  const verifier = new CountingVerifier();
  const config = parseConfig({ ADMIN_TOKEN: OPERATOR_TOKEN, AUTH_TOKEN_CACHE_SIZE: size });
  return { verifier, auth: new Authenticator(config, verifier) };
};

describe('bearerToken', () => {
  it.each([
    ['Bearer abc.def-ghi_jkl', 'abc.def-ghi_jkl'],
    ['bearer  abc==', 'abc=='],
    ['BEARER abc ', 'abc'],
  ])('reads %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it.each([[undefined], ['Basic abc'], ['Bearer'], ['Bearer a b'], ['Bearer a,b'], ['Bearerabc']])(
    'finds no token in %j',
    (header) => {
      expect(bearerToken(header)).toBeUndefined();
    },
  );
});

describe('credentialOf', () => {
  it('prefers the header, and reads a query token only when there is no header', () => {
    expect(credentialOf('Bearer h', 'q')).toBe('h');
    expect(credentialOf(undefined, 'q.r')).toBe('q.r');
    expect(credentialOf(undefined, undefined)).toBeUndefined();
  });

  it.each([
    ['another scheme', 'Basic abc', undefined],
    ['an empty query token', undefined, ''],
    ['a repeated query token', undefined, ['a', 'b']],
  ])('calls %s a bad credential, not an anonymous caller', (_name, header, query) => {
    expect(credentialOf(header, query)).toBe(false);
  });
});

describe('Authenticator', () => {
  it('verifies a token once, then answers from the cache without a promise', async () => {
    const { verifier, auth } = make();
    const first = auth.authenticate('alice');
    expect(first).toBeInstanceOf(Promise);
    expect((await first).sub).toBe('alice');
    const again = auth.authenticate('alice');
    expect(again).not.toBeInstanceOf(Promise);
    expect((again as Caller).sub).toBe('alice');
    expect(verifier.calls).toBe(1);
  });

  it('never caches a refusal', async () => {
    const { verifier, auth } = make();
    await expect(auth.authenticate('bad')).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(auth.authenticate('bad')).rejects.toBeInstanceOf(InvalidTokenError);
    expect(verifier.calls).toBe(2);
  });

  it('verifies every time with the cache off', async () => {
    const { verifier, auth } = make('0');
    await auth.authenticate('alice');
    await auth.authenticate('alice');
    expect(verifier.calls).toBe(2);
  });

  it('knows the operator by ADMIN_TOKEN, and nothing close to it', async () => {
    const { verifier, auth } = make();
    expect(auth.authenticate(OPERATOR_TOKEN)).toBe(OPERATOR);
    expect(OPERATOR.scopes.has('admin')).toBe(true);
    await auth.authenticate(`${OPERATOR_TOKEN}x`);
    expect(verifier.calls).toBe(1);
  });
});
