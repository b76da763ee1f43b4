import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Caller } from './caller.js';
import { InvalidTokenError, KeySetUnavailableError } from './token.errors.js';
import { TokenVerifier } from './token-verifier.js';

/** Asymmetric signatures only: `none` and HS* (a public key used as an HMAC secret) never verify. */
export const ASYMMETRIC_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
  'Ed25519',
];

export interface JoseVerifierOptions {
  /** Where keys come from: the provider's remote set, or the local issuer's own. */
  readonly keys: JWTVerifyGetKey;
  readonly issuer: string;
  readonly audience: string;
  readonly clockToleranceS: number;
}

const MAX_TOKEN_LENGTH = 8192;

/** Verifies JWTs with jose: signature, `iss`, `aud`, `exp`/`nbf`, then reads `sub`, `name`, `scope`. */
export class JoseTokenVerifier extends TokenVerifier {
  constructor(private readonly options: JoseVerifierOptions) {
    super();
  }

  async verify(token: string): Promise<Caller> {
    if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('invalid');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.options.keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceS,
        algorithms: ASYMMETRIC_ALGORITHMS,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      if (error instanceof KeySetUnavailableError) throw error;
      if (error instanceof errors.JWTExpired) throw new InvalidTokenError('expired');
      if (error instanceof errors.JOSEError || error instanceof TypeError) throw new InvalidTokenError('invalid');
      throw error;
    }
    return callerOf(payload);
  }
}

function callerOf(payload: JWTPayload): Caller {
  const { sub, exp } = payload;
  const name = payload['name'];
  const scope = payload['scope'];
  if (typeof sub !== 'string' || sub === '' || sub.length > 255 || typeof exp !== 'number') {
    throw new InvalidTokenError('invalid');
  }
  if ((name !== undefined && typeof name !== 'string') || (scope !== undefined && typeof scope !== 'string')) {
    throw new InvalidTokenError('invalid');
  }
  return {
    sub,
    name: name === undefined || name.trim() === '' ? sub : name.trim().slice(0, 64),
    scopes: new Set((scope ?? '').split(' ').filter((s) => s !== '')),
    expiresAt: exp * 1000,
  };
}
