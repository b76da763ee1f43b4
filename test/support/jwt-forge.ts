import { createHmac } from 'node:crypto';

/**
 * Tokens no verifier should accept, built by hand (no JWT library would
 * make them): unsigned, HMAC-signed with the public key as the secret, and
 * a good token with its payload changed under the same signature.
 */
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: 'forger',
    scope: 'admin',
    iss: 'nest-async-api',
    aud: 'nest-async-api',
    iat: now,
    exp: now + 600,
    ...overrides,
  };
};

/** `alg: none` with an empty signature. */
export const unsignedToken = (overrides?: Record<string, unknown>): string =>
  `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(overrides))}.`;

/** HS256 keyed with the service's public key set: the classic algorithm-confusion attack. */
export function hmacWithPublicKey(publicKeyText: string, kid: string | undefined): string {
  const signingInput = `${b64({ alg: 'HS256', typ: 'JWT', ...(kid === undefined ? {} : { kid }) })}.${b64(claims())}`;
  return `${signingInput}.${createHmac('sha256', publicKeyText).update(signingInput).digest('base64url')}`;
}

/** `token` with its payload replaced (here: granted admin) and the original signature kept. */
export function tamperedToken(token: string, overrides: Record<string, unknown> = { scope: 'admin' }): string {
  const [header, payload, signature] = token.split('.');
  const original = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${header ?? ''}.${b64({ ...original, ...overrides })}.${signature ?? ''}`;
}
