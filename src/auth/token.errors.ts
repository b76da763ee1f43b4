import { AppException } from '../common/errors/app.exception.js';

export type InvalidTokenReason = 'missing' | 'expired' | 'invalid';

// Descriptions say what to do, never which check failed (issuer, audience, signature, kid).
const DESCRIPTIONS: Record<InvalidTokenReason, string> = {
  missing: 'This request needs a bearer token',
  expired: 'The access token has expired',
  invalid: 'The access token is malformed or could not be verified',
};

/** RFC 6750 §3: 401 with `WWW-Authenticate: Bearer error="invalid_token"`. */
export class InvalidTokenError extends AppException {
  constructor(readonly reason: InvalidTokenReason) {
    super('invalid_token', DESCRIPTIONS[reason], {
      headers: {
        'www-authenticate': `Bearer realm="nest-async-api", error="invalid_token", error_description="${DESCRIPTIONS[reason]}"`,
      },
    });
  }
}

/** RFC 6750 §3: 403 with `error="insufficient_scope"` and the scope that would do. */
export class InsufficientScopeError extends AppException {
  constructor(readonly scope: string) {
    super('insufficient_scope', `This request needs the scope "${scope}"`, {
      headers: {
        'www-authenticate': `Bearer realm="nest-async-api", error="insufficient_scope", scope="${scope}"`,
      },
    });
  }
}

/** The identity provider's key set could not be fetched: the token is neither good nor bad yet. */
export class KeySetUnavailableError extends AppException {
  constructor(cause: unknown) {
    super('dependency_unavailable', 'The identity provider cannot be reached to verify the token; retry shortly', {
      headers: { 'retry-after': '5' },
      cause,
    });
  }
}
