import type { Caller } from './caller.js';

/**
 * Port: turns a bearer token into a verified caller, or throws
 * InvalidTokenError (bad token) / KeySetUnavailableError (cannot tell yet).
 */
export abstract class TokenVerifier {
  abstract verify(token: string): Promise<Caller>;
}
