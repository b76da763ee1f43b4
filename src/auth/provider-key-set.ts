import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import type { ErrorSink } from '../common/async/fire-and-forget.js';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { KeySetUnavailableError } from './token.errors.js';

export interface ProviderKeySetOptions {
  readonly url: string;
  /** Least time between two fetches caused by unknown `kid`s, and the pause after a failed fetch. */
  readonly cooldownMs: number;
  /** Known keys are re-fetched in the background this often, so a key the provider withdrew stops verifying. */
  readonly refreshMs?: number;
  readonly timeoutMs?: number;
  readonly logger: ErrorSink;
  readonly now?: () => number;
}

/** Errors of looking a key up in a set that did arrive: the token is at fault, not the provider. */
const TOKEN_FAULTS = [errors.JWKSNoMatchingKey, errors.JWKSMultipleMatchingKeys, errors.JOSENotSupported];

/**
 * An OIDC provider's JSON Web Key Set (jose's remote set) with two rules
 * jose leaves to the caller: keys already fetched stay usable while a
 * refresh fails (they are never aged out into an outage), and after a failed
 * fetch nothing asks the provider again for `cooldownMs`, so a flood of
 * tokens with made-up `kid`s cannot hammer a provider that is down.
 */
export class ProviderKeySet {
  private readonly remote: ReturnType<typeof createRemoteJWKSet>;
  private readonly now: () => number;
  private pausedUntil = 0;
  private lastRefreshAt: number;

  constructor(private readonly options: ProviderKeySetOptions) {
    this.now = options.now ?? Date.now;
    this.lastRefreshAt = this.now();
    this.remote = createRemoteJWKSet(new URL(options.url), {
      cooldownDuration: options.cooldownMs,
      cacheMaxAge: Number.POSITIVE_INFINITY,
      timeoutDuration: options.timeoutMs ?? 5000,
    });
  }

  /** The key lookup jose's `jwtVerify` calls. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const now = this.now();
    if (now < this.pausedUntil) throw new KeySetUnavailableError(new Error('key set fetch failed recently'));
    this.refreshInBackground(now);
    try {
      return await this.remote(header, token);
    } catch (error) {
      if (TOKEN_FAULTS.some((type) => error instanceof type)) throw error;
      this.pausedUntil = this.now() + this.options.cooldownMs;
      throw new KeySetUnavailableError(error);
    }
  };

  private refreshInBackground(now: number): void {
    const refreshMs = this.options.refreshMs ?? 600_000;
    if (now - this.lastRefreshAt < refreshMs || this.remote.jwks() === undefined || this.remote.reloading) return;
    this.lastRefreshAt = now;
    fireAndForget(this.remote.reload(), this.options.logger, 'refresh of the identity provider key set');
  }
}
