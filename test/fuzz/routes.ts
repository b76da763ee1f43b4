import type { AccessRule } from '../../src/auth/access-rule.js';
import type { Scope } from '../../src/auth/caller.js';

/**
 * Every HTTP route the app serves, as the fuzz tier knows them. The spec
 * checks this table against Fastify's own route table and the OpenAPI
 * document, so a new route fails the fuzz tier until it is fuzzed too; and
 * each method's access rule against what the app answers to anonymous,
 * unscoped and admin callers, and against the security the document declares.
 */
export interface KnownRoute {
  /** Fastify's pattern, e.g. `/users/:id`. */
  readonly pattern: string;
  /** Methods registered (HEAD comes with every GET). */
  readonly methods: readonly string[];
  /** Who may call each method (the rule its decorator declares). */
  readonly access: Readonly<Record<string, AccessRule>>;
  /** The property that fuzzes it. */
  readonly fuzzedBy: string;
}

const PUBLIC: AccessRule = { kind: 'public' };
const READ: AccessRule = { kind: 'read' };
const ANYONE: AccessRule = { kind: 'anyone' };
const AUTHENTICATED: AccessRule = { kind: 'authenticated' };
const SELF_OR_ADMIN: AccessRule = { kind: 'self-or-admin', param: 'id' };
const scope = (name: Scope): AccessRule => ({ kind: 'scope', scope: name });

const route = (pattern: string, access: Record<string, AccessRule>, fuzzedBy: string): KnownRoute => ({
  pattern,
  methods: Object.keys(access),
  access,
  fuzzedBy,
});

const PROBES = 'GET /health, /ready, /metrics, /.well-known/jwks.json';
const DOCS = 'docs: /openapi.*, /docs and its assets';

export const KNOWN_ROUTES: readonly KnownRoute[] = [
  route('/', { GET: PUBLIC }, 'GET / (web page)'),
  route('/health', { GET: PUBLIC }, PROBES),
  route('/ready', { GET: PUBLIC }, PROBES),
  route('/metrics', { GET: PUBLIC }, PROBES),
  route('/.well-known/jwks.json', { GET: PUBLIC }, PROBES),
  route('/openapi.json', { GET: PUBLIC }, DOCS),
  route('/openapi.yaml', { GET: PUBLIC }, DOCS),
  route('/docs', { GET: PUBLIC }, DOCS),
  route('/docs/', { GET: PUBLIC }, DOCS),
  route('/docs/swagger-ui-init.js', { GET: PUBLIC }, DOCS),
  route('/docs/docs/swagger-ui-init.js', { GET: PUBLIC }, DOCS),
  route('/docs/index.html', { GET: PUBLIC }, DOCS),
  route('/docs/LICENSE', { GET: PUBLIC }, DOCS),
  route('/docs/*', { GET: PUBLIC }, DOCS),
  route('/resilience', { GET: scope('admin') }, 'GET /resilience (admin)'),
  route('/users', { POST: scope('users:write'), GET: READ }, 'POST /users'),
  route('/users/:id', { GET: READ, PATCH: SELF_OR_ADMIN, DELETE: SELF_OR_ADMIN }, 'GET, PATCH, DELETE /users/:id'),
  route('/profiles/batch', { POST: READ }, 'POST /profiles/batch'),
  route('/profiles/:userId', { GET: READ }, 'GET /profiles/:userId'),
  route('/notifications', { POST: scope('notifications:write') }, 'POST /notifications'),
  route('/notifications/:id', { GET: AUTHENTICATED }, 'GET /notifications/:id'),
  route('/process-data', { POST: ANYONE }, 'POST /process-data'),
  route('/stream', { GET: READ }, 'GET /stream and /events (SSE)'),
  route('/events', { GET: READ }, 'GET /stream and /events (SSE)'),
];

/** Concrete paths, one per route (ids that exist or parse), for the every-method property. */
export const CONCRETE_PATHS = [
  '/',
  '/health',
  '/ready',
  '/metrics',
  '/.well-known/jwks.json',
  '/openapi.json',
  '/openapi.yaml',
  '/docs',
  '/docs/index.html',
  '/resilience',
  '/users',
  '/users/2147483647',
  '/profiles/2147483647',
  '/profiles/batch',
  '/notifications',
  '/notifications/00000000-0000-4000-8000-000000000000',
  '/process-data',
  '/stream?count=1&intervalMs=0',
  '/events',
] as const;

/** A pattern as a regular expression; a parameter may be empty, as Fastify's router lets `/users/` reach `/users/:id`. */
const patternRegex = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('/')
      .map((segment) =>
        segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/')}$`,
  );

/** The methods some route serves at this concrete path (GET brings HEAD). */
export function methodsAt(path: string): Set<string> {
  const pathname = path.split('?')[0] ?? path;
  const methods = new Set<string>();
  for (const route of KNOWN_ROUTES) {
    if (!patternRegex(route.pattern).test(pathname)) continue;
    for (const m of route.methods) {
      methods.add(m);
      if (m === 'GET') methods.add('HEAD');
    }
  }
  return methods;
}

/** The route serving `method` (HEAD: the GET) at this concrete path, and its access rule; undefined: none. */
export function routeAt(method: string, path: string): { route: KnownRoute; access: AccessRule } | undefined {
  const pathname = path.split('?')[0] ?? path;
  const wanted = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
  for (const known of KNOWN_ROUTES) {
    const access = known.access[wanted];
    if (access !== undefined && patternRegex(known.pattern).test(pathname)) return { route: known, access };
  }
  return undefined;
}

/** Whether a rule turns anonymous callers away (401): a verified caller is needed. */
export const needsCaller = (rule: AccessRule): boolean =>
  rule.kind === 'authenticated' || rule.kind === 'scope' || rule.kind === 'self-or-admin';

/** Whether a rule refuses some verified callers (403): a scope, or being the resource's owner. */
export const needsGrant = (rule: AccessRule): boolean => rule.kind === 'scope' || rule.kind === 'self-or-admin';

/** Whether a route takes bearer tokens beyond the public reads (OpenAPI declares its bearer security). */
export const takesBearer = (rule: AccessRule): boolean => needsCaller(rule) || rule.kind === 'anyone';

/**
 * The routes in Fastify's `printRoutes({ commonPrefix: false })` tree, as
 * pattern → methods.
 */
export function parsePrintedRoutes(printed: string): Map<string, Set<string>> {
  const routes = new Map<string, Set<string>>();
  const stack: { depth: number; path: string }[] = [];
  for (const line of printed.split('\n')) {
    const match = /^([\s│├└─]*)(\S.*?) \(([^)]*)\)\s*$/.exec(line) ?? /^([\s│├└─]*)(\S.*?)\s*$/.exec(line);
    if (match?.[2] === undefined) continue;
    const depth = (match[1] ?? '').length;
    while (stack.length > 0 && (stack.at(-1)?.depth ?? -1) >= depth) stack.pop();
    const parent = stack.at(-1)?.path ?? '';
    const segment = match[2];
    const path =
      parent === '' ? segment : `${parent}${parent.endsWith('/') || segment.startsWith('/') ? '' : '/'}${segment}`;
    stack.push({ depth, path });
    if (match[3] !== undefined) {
      const methods = routes.get(path) ?? new Set<string>();
      for (const m of match[3].split(',')) methods.add(m.trim());
      routes.set(path, methods);
    }
  }
  return routes;
}
