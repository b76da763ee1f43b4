import type { FastifyInstance, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import type { AccessRule } from './access-rule.js';
import type { Authenticator } from './authenticator.js';
import { credentialOf } from './authenticator.js';
import { hasScope, isAdmin, type Caller } from './caller.js';
import { InsufficientScopeError, InvalidTokenError } from './token.errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; undefined for an anonymous request. */
    caller: Caller | undefined;
    /** Why the credential the request carried did not verify (answered 401 once the limiter has charged it). */
    credentialError: InvalidTokenError | undefined;
  }
}

/**
 * Whose bucket a request draws from: the verified `sub`, else the client
 * address (X-Forwarded-For only when TRUST_PROXY names the proxy). A
 * credential that did not verify never picks a bucket.
 */
export const rateLimitClientOf = (request: FastifyRequest): { key: string; anonymous: boolean } =>
  request.caller === undefined
    ? { key: `ip:${request.ip}`, anonymous: true }
    : { key: `sub:${request.caller.sub}`, anonymous: false };

const PUBLIC: AccessRule = { kind: 'public' };

/** Routes that plugins add (Swagger UI and its documents, CORS preflight): public, they hold no data. */
const isPluginRoute = (route: RouteOptions): boolean =>
  route.url === '/docs' ||
  route.url.startsWith('/docs/') ||
  route.url.startsWith('/openapi.') ||
  (route.method === 'OPTIONS' && route.url === '*');

/** The token a request carries: the Authorization header, or `?access_token=` where the route allows it. */
function tokenOf(request: FastifyRequest): string | false | undefined {
  const inQuery = request.routeOptions.config.tokenInQuery === true;
  const query = inQuery ? (request.query as Record<string, unknown> | undefined)?.['access_token'] : undefined;
  return credentialOf(request.headers.authorization, query);
}

/**
 * Boot check: every route must declare its access rule, so no route is open
 * by omission. Plugin routes are marked public here.
 */
export function registerAccessCheck(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (route) => {
    if (route.config?.access !== undefined) return;
    if (isPluginRoute(route)) {
      route.config = { ...route.config, access: PUBLIC };
      return;
    }
    const methods = [route.method].flat().join(',');
    throw new Error(
      `${methods} ${route.url} declares no access rule: add @Public(), @PublicRead(), @Authenticated(), @Scopes(...), @SelfOrAdmin() or @Anyone()`,
    );
  });
}

/**
 * First of the two access hooks (`onRequest`, before the rate limiter):
 * verifies the credential, if any. A credential that does not verify is
 * remembered, not answered yet, so the limiter charges the request to its
 * address rather than to a bucket the credential would pick.
 */
export function registerAuthentication(fastify: FastifyInstance, authenticator: () => Authenticator | undefined): void {
  fastify.decorateRequest('caller', undefined);
  fastify.decorateRequest('credentialError', undefined);
  fastify.addHook('onRequest', (request, _reply, done) => {
    const token = tokenOf(request);
    // The credential is the access layer's: handlers (and their query DTOs, which refuse unknown fields) never see it.
    if (request.routeOptions.config.tokenInQuery === true) {
      delete (request.query as Record<string, unknown> | undefined)?.['access_token'];
    }
    if (token === undefined) {
      done();
      return;
    }
    const auth = authenticator();
    if (token === false || auth === undefined) {
      request.credentialError = new InvalidTokenError('invalid');
      done();
      return;
    }
    let result: Caller | Promise<Caller>;
    try {
      result = auth.authenticate(token);
    } catch (error) {
      settle(request, error, done);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (caller) => {
          request.caller = caller;
          done();
        },
        (error: unknown) => {
          settle(request, error, done);
        },
      );
      return;
    }
    request.caller = result;
    done();
  });
}

function settle(request: FastifyRequest, error: unknown, done: HookHandlerDoneFunction): void {
  if (error instanceof InvalidTokenError) {
    request.credentialError = error;
    done();
    return;
  }
  // The key set could not be fetched (503) or something unexpected: answered now.
  done(error as Error);
}

/** Second access hook (`onRequest`, after the rate limiter): applies the route's rule. */
export function registerAuthorization(fastify: FastifyInstance, options: { readonly publicReads: boolean }): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const failure = request.credentialError ?? refusal(request, options.publicReads);
    if (failure === undefined) done();
    else done(failure);
  });
}

function refusal(request: FastifyRequest, publicReads: boolean): Error | undefined {
  const rule = request.routeOptions.config.access;
  // Unmatched URLs (the 404 handler) have no rule and nothing to protect.
  if (rule === undefined) return undefined;
  const caller = request.caller;
  switch (rule.kind) {
    case 'public':
    case 'anyone':
      return undefined;
    case 'read':
      return publicReads || caller !== undefined ? undefined : new InvalidTokenError('missing');
    case 'authenticated':
      return caller !== undefined ? undefined : new InvalidTokenError('missing');
    case 'scope':
      if (caller === undefined) return new InvalidTokenError('missing');
      return hasScope(caller, rule.scope) ? undefined : new InsufficientScopeError(rule.scope);
    case 'self-or-admin': {
      if (caller === undefined) return new InvalidTokenError('missing');
      const param = (request.params as Record<string, string | undefined>)[rule.param];
      return caller.sub === param || isAdmin(caller) ? undefined : new InsufficientScopeError('admin');
    }
  }
}
