import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { Authenticator, credentialOf } from '../auth/authenticator.js';
import type { Caller } from '../auth/caller.js';
import { InvalidTokenError } from '../auth/token.errors.js';

/**
 * The token a WebSocket upgrade carries: the Authorization header (programs),
 * else `?access_token=` (browsers cannot set headers on a WebSocket). False for
 * a credential that is there but malformed; undefined for none.
 */
export function upgradeToken(request: IncomingMessage): string | false | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) return credentialOf(header, undefined);
  let values: string[];
  try {
    values = new URL(request.url ?? '/', 'http://localhost').searchParams.getAll('access_token');
  } catch {
    return false;
  }
  return credentialOf(undefined, values.length <= 1 ? values[0] : values);
}

/**
 * Verifies the token of a chat upgrade before the socket is upgraded (the
 * adapter answers a refusal with a problem document), and hands the caller on
 * to the gateway. Verification itself is the Authenticator's, as for HTTP.
 */
@Injectable()
export class ChatUpgradeAuthenticator {
  private readonly callers = new WeakMap<IncomingMessage, Caller>();

  constructor(private readonly authenticator: Authenticator) {}

  /**
   * Throws (or rejects with) InvalidTokenError for a credential that does not
   * verify, KeySetUnavailableError when the provider's keys cannot be had.
   * Synchronous for no token or a token verified before.
   */
  authenticate(request: IncomingMessage): void | Promise<void> {
    const token = upgradeToken(request);
    if (token === undefined) return;
    if (token === false) throw new InvalidTokenError('invalid');
    const result = this.authenticator.authenticate(token);
    if (result instanceof Promise) {
      return result.then((caller) => {
        this.callers.set(request, caller);
      });
    }
    this.callers.set(request, result);
  }

  /** The caller `authenticate` verified for this upgrade; undefined for a guest. */
  callerOf(request: IncomingMessage | undefined): Caller | undefined {
    return request === undefined ? undefined : this.callers.get(request);
  }
}
