/**
 * Every HTTP route the app serves, as the fuzz tier knows them. The spec
 * checks this table against Fastify's own route table and the OpenAPI
 * document, so a new route fails the fuzz tier until it is fuzzed too.
 */
export interface KnownRoute {
  /** Fastify's pattern, e.g. `/users/:id`. */
  readonly pattern: string;
  /** Methods registered (HEAD comes with every GET). */
  readonly methods: readonly string[];
  /** The property that fuzzes it. */
  readonly fuzzedBy: string;
}

export const KNOWN_ROUTES: readonly KnownRoute[] = [
  { pattern: '/', methods: ['GET'], fuzzedBy: 'GET / (web page)' },
  { pattern: '/health', methods: ['GET'], fuzzedBy: 'GET /health, /ready, /metrics' },
  { pattern: '/ready', methods: ['GET'], fuzzedBy: 'GET /health, /ready, /metrics' },
  { pattern: '/metrics', methods: ['GET'], fuzzedBy: 'GET /health, /ready, /metrics' },
  { pattern: '/openapi.json', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/openapi.yaml', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs/', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs/swagger-ui-init.js', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs/docs/swagger-ui-init.js', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs/index.html', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs/LICENSE', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/docs/*', methods: ['GET'], fuzzedBy: 'docs: /openapi.*, /docs and its assets' },
  { pattern: '/resilience', methods: ['GET'], fuzzedBy: 'GET /resilience (admin)' },
  { pattern: '/users', methods: ['POST', 'GET'], fuzzedBy: 'POST /users' },
  { pattern: '/users/:id', methods: ['GET', 'PATCH', 'DELETE'], fuzzedBy: 'GET, PATCH, DELETE /users/:id' },
  { pattern: '/profiles/batch', methods: ['POST'], fuzzedBy: 'POST /profiles/batch' },
  { pattern: '/profiles/:userId', methods: ['GET'], fuzzedBy: 'GET /profiles/:userId' },
  { pattern: '/notifications', methods: ['POST'], fuzzedBy: 'POST /notifications' },
  { pattern: '/notifications/:id', methods: ['GET'], fuzzedBy: 'GET /notifications/:id' },
  { pattern: '/process-data', methods: ['POST'], fuzzedBy: 'POST /process-data' },
  { pattern: '/stream', methods: ['GET'], fuzzedBy: 'GET /stream and /events (SSE)' },
  { pattern: '/events', methods: ['GET'], fuzzedBy: 'GET /stream and /events (SSE)' },
];

/** Concrete paths, one per route (ids that exist or parse), for the every-method property. */
export const CONCRETE_PATHS = [
  '/',
  '/health',
  '/ready',
  '/metrics',
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

const patternRegex = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('/')
      .map((segment) =>
        segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
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
