import type { Scope } from './caller.js';

/** Who may call a route; every route declares one (checked at boot). */
export type AccessRule =
  /** Anyone, always: probes, scrapes, the key set, the page. */
  | { readonly kind: 'public' }
  /** Anyone while AUTH_PUBLIC_READS is on (the default), else any verified caller. */
  | { readonly kind: 'read' }
  /** Any verified caller; the handler narrows further (owner or admin). */
  | { readonly kind: 'authenticated' }
  /** A verified caller holding the scope (or admin). */
  | { readonly kind: 'scope'; readonly scope: Scope }
  /** The caller whose `sub` equals the route parameter, or admin. */
  | { readonly kind: 'self-or-admin'; readonly param: string }
  /** Anonymous callers too (under their own rate-limit budget), and verified ones under theirs. */
  | { readonly kind: 'anyone' };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set by the access decorators (@Public, @PublicRead, @Scopes, ...). */
    access?: AccessRule;
    /** Set by @TokenInQuery: the token may come as `?access_token=` (EventSource cannot send headers). */
    tokenInQuery?: boolean;
  }
}
