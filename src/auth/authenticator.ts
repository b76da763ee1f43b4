import { Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../config/app-config.js';
import type { Caller } from './caller.js';
import { TokenVerifier } from './token-verifier.js';
import { tokenDigest, VerifiedTokenCache } from './verified-token.cache.js';

/** Who ADMIN_TOKEN authenticates: the operator, with `admin` and no identity provider involved. */
export const OPERATOR: Caller = { sub: 'operator', name: 'operator', scopes: new Set(['admin']), expiresAt: undefined };

// RFC 6750 §2.1: "Bearer" 1*SP b64token.
const BEARER = /^Bearer +([\w\-.~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer …` header; undefined for no header or any other form. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1];
}

/**
 * The credential a request carries (RFC 6750 §2.1, §2.3): the Authorization
 * header, else an `access_token` query value where the transport allows one.
 * Undefined for none; false for one that is there but malformed (another
 * scheme, an empty or repeated query token): a bad credential, not an anonymous caller.
 */
export function credentialOf(header: string | undefined, queryToken: unknown): string | false | undefined {
  if (header !== undefined) return bearerToken(header) ?? false;
  if (queryToken === undefined) return undefined;
  return typeof queryToken === 'string' && queryToken !== '' ? queryToken : false;
}

/**
 * Turns a bearer credential into a caller: the operator's ADMIN_TOKEN, a
 * token verified before (cached until it expires), or a fresh verification.
 * Answers synchronously when it can, so a cached token costs the request hook no promise.
 */
@Injectable()
export class Authenticator {
  private readonly cache: VerifiedTokenCache;
  private readonly adminDigest: Buffer | undefined;

  constructor(
    config: AppConfig,
    private readonly verifier: TokenVerifier,
  ) {
    this.cache = new VerifiedTokenCache(config.auth.tokenCacheSize);
    this.adminDigest = config.adminToken === undefined ? undefined : Buffer.from(tokenDigest(config.adminToken));
  }

  authenticate(token: string): Caller | Promise<Caller> {
    const digest = tokenDigest(token);
    // Digests compared in constant time, so the static token's length and prefix do not leak.
    if (this.adminDigest !== undefined && timingSafeEqual(Buffer.from(digest), this.adminDigest)) return OPERATOR;
    const cached = this.cache.get(digest);
    if (cached !== undefined) return cached;
    return this.verifier.verify(token).then((caller) => {
      this.cache.set(digest, caller);
      return caller;
    });
  }
}
