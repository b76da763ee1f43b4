import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { JoseTokenVerifier } from './jose-token.verifier.js';
import { InvalidTokenError } from './token.errors.js';

const { privateKey, publicKey } = await generateKeyPair('ES256');
const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };

const verifier = new JoseTokenVerifier({
  keys: createLocalJWKSet({ keys: [publicJwk] }),
  issuer: 'iss',
  audience: 'aud',
  clockToleranceS: 30,
});

const sign = (claims: Record<string, unknown>, options: { exp?: number | null; key?: CryptoKey } = {}) => {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('iss').setAudience('aud');
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 60);
  return jwt.sign(options.key ?? privateKey);
};

const reasonOf = async (token: string): Promise<string> => {
  try {
    await verifier.verify(token);
  } catch (error) {
    if (error instanceof InvalidTokenError) return error.reason;
    throw error;
  }
  return 'accepted';
};

describe('JoseTokenVerifier', () => {
  it('reads sub, name and scopes; name falls back to sub', async () => {
    const caller = await verifier.verify(await sign({ sub: 'u1', name: ' Ada ', scope: 'users:write  chat:write' }));
    expect(caller).toMatchObject({ sub: 'u1', name: 'Ada' });
    expect([...caller.scopes]).toEqual(['users:write', 'chat:write']);
    expect(caller.expiresAt).toBeGreaterThan(Date.now());
    expect((await verifier.verify(await sign({ sub: 'u2' }))).name).toBe('u2');
  });

  it('tells expired apart from invalid, honouring the clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await reasonOf(await sign({ sub: 'u' }, { exp: now - 10 }))).toBe('accepted');
    expect(await reasonOf(await sign({ sub: 'u' }, { exp: now - 60 }))).toBe('expired');
  });

  it.each([
    ['no sub', {}, {}],
    ['an empty sub', { sub: '' }, {}],
    ['no exp', { sub: 'u' }, { exp: null }],
    ['a name that is not a string', { sub: 'u', name: 42 }, {}],
    ['a scope that is not a string', { sub: 'u', scope: ['admin'] }, {}],
  ])('refuses a token with %s', async (_name, claims, options) => {
    expect(await reasonOf(await sign(claims, options as { exp?: null }))).toBe('invalid');
  });

  it('refuses a token signed by another key', async () => {
    const other = await generateKeyPair('ES256');
    expect(await reasonOf(await sign({ sub: 'u' }, { key: other.privateKey }))).toBe('invalid');
  });
});
