import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalIssuer, type TokenClaims } from '../../src/auth/local-issuer.js';

/**
 * The key folder every test app (in-process or child process) is started
 * with, so tokens minted here verify there, as `npm run token` tokens do.
 */
export const TEST_KEYS_DIR = join(tmpdir(), 'nest-async-api-test-auth');

const issuers = new Map<string, Promise<LocalIssuer>>();
/** The test key, signing for `iss`/`aud` (the apps expect nest-async-api for both). */
const localIssuer = (iss = 'nest-async-api', aud = 'nest-async-api', dir = TEST_KEYS_DIR): Promise<LocalIssuer> => {
  const key = `${dir}\n${iss}\n${aud}`;
  let issuer = issuers.get(key);
  if (issuer === undefined) {
    issuer = LocalIssuer.open(dir, iss, aud);
    issuers.set(key, issuer);
  }
  return issuer;
};

/** Any claims; `scope` is free text so tests can send scopes this service does not know. */
export type MintOptions = Partial<TokenClaims>;

/** A token from the test apps' own issuer; one hour, sub "test-user" unless told. */
export async function mintToken(options: MintOptions = {}): Promise<string> {
  return mintWith({}, options);
}

/** A token with the test key but another issuer, audience or key folder (a key the apps do not hold). */
export async function mintWith(
  signer: { readonly issuer?: string; readonly audience?: string; readonly keysDir?: string },
  options: MintOptions = {},
): Promise<string> {
  return (await localIssuer(signer.issuer, signer.audience, signer.keysDir)).sign({
    sub: options.sub ?? 'test-user',
    ttlS: options.ttlS ?? 3600,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.scope === undefined ? {} : { scope: options.scope }),
    ...(options.notBeforeS === undefined ? {} : { notBeforeS: options.notBeforeS }),
  });
}

/** `{ authorization: 'Bearer …' }` for fetch. */
export const bearer = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` });

/** An admin token (every scope), for suites whose subject is not access control. */
export const ADMIN = await mintToken({ sub: 'test-admin', name: 'Test Admin', scope: 'admin' });

/** Headers of an admin JSON write. */
export const adminJson = { 'content-type': 'application/json', ...bearer(ADMIN) } as const;
