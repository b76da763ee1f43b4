import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalIssuer, type TokenClaims } from '../../src/auth/local-issuer.js';

/**
 * The key folder every test app (in-process or child process) is started
 * with, so tokens minted here verify there, as `npm run token` tokens do.
 */
export const TEST_KEYS_DIR = join(tmpdir(), 'nest-async-api-test-auth');

let issuer: Promise<LocalIssuer> | undefined;
const localIssuer = (): Promise<LocalIssuer> =>
  (issuer ??= LocalIssuer.open(TEST_KEYS_DIR, 'nest-async-api', 'nest-async-api'));

/** Any claims; `scope` is free text so tests can send scopes this service does not know. */
export type MintOptions = Partial<TokenClaims>;

/** A token from the test apps' own issuer; one hour, sub "test-user" unless told. */
export async function mintToken(options: MintOptions = {}): Promise<string> {
  return (await localIssuer()).sign({
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
