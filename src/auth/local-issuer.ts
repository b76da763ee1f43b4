import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const ALG = 'ES256';
const KEY_FILE = 'signing-key.jwk.json';

export interface TokenClaims {
  readonly sub: string;
  readonly name?: string;
  readonly scope?: string;
  /** Lifetime in seconds. */
  readonly ttlS: number;
  /** Seconds from now before which the token is not valid (tests of `nbf`). */
  readonly notBeforeS?: number;
}

/**
 * The service as its own token issuer, for deployments without an identity
 * provider: one ES256 key pair, created on first start in `keysDir` and
 * shared by every instance that mounts the same folder.
 */
export class LocalIssuer {
  readonly getKey: JWTVerifyGetKey;

  private constructor(
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: JWK,
    readonly issuer: string,
    readonly audience: string,
  ) {
    this.getKey = createLocalJWKSet({ keys: [publicJwk] });
  }

  /** Loads the key pair from `keysDir`, creating it when the folder holds none. */
  static async open(keysDir: string, issuer: string, audience: string): Promise<LocalIssuer> {
    const privateJwk = await loadOrCreate(keysDir);
    const { d: _d, ...publicJwk } = privateJwk;
    const privateKey = (await importJWK(privateJwk, ALG)) as CryptoKey;
    return new LocalIssuer(privateKey, { ...publicJwk, use: 'sig' }, issuer, audience);
  }

  /** The public half, as served at /.well-known/jwks.json. */
  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  async sign(claims: TokenClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({
      ...(claims.name === undefined ? {} : { name: claims.name }),
      ...(claims.scope === undefined ? {} : { scope: claims.scope }),
    })
      .setProtectedHeader({ alg: ALG, kid: this.publicJwk.kid ?? '', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setJti(randomUUID())
      .setExpirationTime(now + claims.ttlS);
    if (claims.notBeforeS !== undefined) jwt.setNotBefore(now + claims.notBeforeS);
    return jwt.sign(this.privateKey);
  }
}

async function loadOrCreate(keysDir: string): Promise<JWK> {
  const path = join(keysDir, KEY_FILE);
  const existing = await readKey(path);
  if (existing !== undefined) return existing;
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  // Written whole to a private name, then linked into place: instances starting together
  // agree on one key (link fails for all but the first), and none reads a half-written file.
  const temp = join(keysDir, `.${KEY_FILE}.${randomUUID()}`);
  await writeFile(temp, JSON.stringify({ ...jwk, kid, alg: ALG }), { mode: 0o600 });
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(temp, { force: true });
  }
  const created = await readKey(path);
  if (created === undefined) throw new Error(`could not read the signing key just written to ${path}`);
  return created;
}

async function readKey(path: string): Promise<JWK | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const jwk = JSON.parse(text) as JWK;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string' || typeof jwk.kid !== 'string') {
    throw new Error(`${path} is not an ES256 private key written by this service; move it away to create a new one`);
  }
  return jwk;
}
