import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiQuery } from '@nestjs/swagger';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { routeConfig } from '../common/http/route-config.decorator.js';
import { AnonymousBudget } from '../resilience/nest/rate-limit.decorator.js';
import type { AccessRule } from './access-rule.js';
import type { Scope } from './caller.js';

const rule = (access: AccessRule) => routeConfig('access', access);
const guarded = (access: AccessRule, ...statuses: (401 | 403 | 404)[]) =>
  applyDecorators(rule(access), ApiBearerAuth(), ApiProblems(...statuses));

/** Open to everyone, always (probes, scrapes, the key set, the page). */
export const Public = () => rule({ kind: 'public' });

/** A read: open while AUTH_PUBLIC_READS is on (the default), else it needs a verified token. */
export const PublicRead = () => rule({ kind: 'read' });

/** Any verified caller; the service decides per resource (owner or admin). */
export const Authenticated = () => guarded({ kind: 'authenticated' }, 401);

/** A verified caller holding `scope` (`admin` holds every scope). */
export const Scopes = (scope: Scope) => guarded({ kind: 'scope', scope }, 401, 403);

/** The caller whose `sub` equals route parameter `param`, or an admin. */
export const SelfOrAdmin = (param = 'id') => guarded({ kind: 'self-or-admin', param }, 401, 403);

/**
 * Anonymous callers too, under their own smaller rate-limit budget; verified callers under theirs.
 * A credential that does not verify is still a 401, so the document lists it.
 */
export const Anyone = () =>
  applyDecorators(rule({ kind: 'anyone' }), AnonymousBudget(), ApiBearerAuth(), ApiProblems(401));

/** The token may also come as `?access_token=` (RFC 6750 §2.3), for EventSource and browser WebSockets. */
export const TokenInQuery = () =>
  applyDecorators(
    routeConfig('tokenInQuery', true),
    // The authentication hook reads and removes it before validation, so it is documented here, not in a query DTO.
    ApiQuery({
      name: 'access_token',
      required: false,
      type: String,
      description: 'Bearer token for clients that cannot send Authorization (EventSource); never logged',
    }),
  );
