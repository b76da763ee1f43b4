/**
 * Fuzz tier, HTTP: fast-check sends hostile requests to every route of the
 * real app over real sockets (undici; node:net for malformed HTTP).
 *
 * The property, for every answer: no 5xx (a 503 only with its documented
 * problem document: database_unavailable, overloaded, dependency_unavailable),
 * every 4xx an application/problem+json document whose `status` is the HTTP
 * status, no log line at level >= 50, no unhandled rejection, and /health
 * still answering after each property. Properties for known contracts (ids,
 * query integers, NUL and lone surrogates, methods, Fastify's own errors) are
 * separate, so a failure names its route and input category.
 *
 * Runs: a bounded few dozen cases per property inside `npm test`.
 *   FUZZ_RUNS=2000   cases per property (longer runs; timeouts scale)
 *   FUZZ_SEED=123    start every property from this seed (a failure prints its seed)
 *   FUZZ_PATH=4:1:0  with FUZZ_SEED and -t '<property>', replay the shrunk counterexample only
 * e.g. FUZZ_RUNS=2000 NODE_OPTIONS=--experimental-vm-modules npx jest test/fuzz/http
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCursor } from '../../src/users/users.cursor.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { mintToken } from '../support/tokens.js';
import {
  acceptValue,
  asHeaderValue,
  acceptedId,
  bodyFor,
  contentType,
  decimalVerdict,
  encodePathSegment,
  hasNulOrLoneSurrogate,
  hostileHeaderValue,
  hostileJson,
  hostileString,
  jsonHasNulOrLoneSurrogate,
  notJsonText,
  nulOrSurrogateIn,
  pathId,
  preview,
  printable,
  queryFor,
  serialize,
  str,
  obj,
  raw,
  fromValue,
  uuidId,
  type Json,
  ID_ATOMS,
} from './arbitraries.js';
import {
  ADMIN_AUTHORIZATION,
  agent,
  assertAlive,
  checkAnswer,
  describeAnswer,
  describeCall,
  fuzz,
  isErrorLine,
  runs,
  send,
  sendRaw,
  timeoutFor,
  Violation,
  watchProcess,
  withCredential,
  type HttpAnswer,
  type HttpCall,
} from './harness.js';
import {
  CONCRETE_PATHS,
  KNOWN_ROUTES,
  methodsAt,
  needsCaller,
  needsGrant,
  parsePrintedRoutes,
  routeAt,
  takesBearer,
} from './routes.js';

const ADMIN_TOKEN = 'fuzz-admin-token-0123456789';
const BOUNDED = 40;

/** Replaces the end of a token's signature: the right shape, a signature that does not verify. */
const tampered = (token: string): string => `${token.slice(0, -6)}${token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA'}`;
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A caller as the access property sees it: none, a credential that must not verify, or a verified one. */
type Credential =
  | { readonly kind: 'none'; readonly label: string }
  | { readonly kind: 'invalid'; readonly label: string; readonly authorization: string }
  | {
      readonly kind: 'verified';
      readonly label: string;
      readonly authorization: string;
      readonly sub: string;
      readonly scopes: readonly string[];
    };

/** The callers of the access property: minted by the test apps' issuer, or forged. */
async function credentials(): Promise<Credential[]> {
  const verified = async (label: string, sub: string, scope?: string): Promise<Credential> => ({
    kind: 'verified',
    label,
    sub,
    scopes: scope?.split(' ') ?? [],
    authorization: `Bearer ${await mintToken({ sub, ...(scope === undefined ? {} : { scope }) })}`,
  });
  const admin = await mintToken({ sub: 'fuzz-admin', scope: 'admin' });
  const invalid = (label: string, authorization: string): Credential => ({ kind: 'invalid', label, authorization });
  const [header, payload] = admin.split('.');
  return [
    { kind: 'none', label: 'anonymous' },
    {
      kind: 'verified',
      label: 'admin token',
      authorization: ADMIN_AUTHORIZATION,
      sub: 'test-admin',
      scopes: ['admin'],
    },
    {
      kind: 'verified',
      label: 'ADMIN_TOKEN',
      authorization: `Bearer ${ADMIN_TOKEN}`,
      sub: 'operator',
      scopes: ['admin'],
    },
    await verified('no scope', 'fuzz-nobody'),
    await verified('users:write', 'fuzz-user-writer', 'users:write'),
    await verified('notifications:write', 'fuzz-notifier', 'notifications:write'),
    await verified('unknown scopes', 'fuzz-odd', 'users:read root *'),
    // The owner of /users/2147483647 (the concrete path), with no scope at all.
    await verified('self', '2147483647'),
    invalid('expired', `Bearer ${await mintToken({ sub: 'fuzz-late', scope: 'admin', ttlS: -120 })}`),
    invalid('not yet valid', `Bearer ${await mintToken({ sub: 'fuzz-early', scope: 'admin', notBeforeS: 600 })}`),
    invalid('bad signature', `Bearer ${tampered(admin)}`),
    invalid('alg none', `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload ?? ''}.`),
    invalid(
      'header of another alg',
      `Bearer ${b64({ alg: 'HS256', typ: 'JWT' })}.${payload ?? ''}.${tampered(admin).split('.')[2] ?? ''}`,
    ),
    invalid('header only', `Bearer ${header ?? ''}`),
    invalid('not a JWT', 'Bearer not-a-token'),
    invalid('ADMIN_TOKEN almost', `Bearer ${ADMIN_TOKEN}x`),
    invalid('empty bearer', 'Bearer '),
    invalid('basic', 'Basic YWRtaW46YWRtaW4='),
    invalid('token without scheme', admin),
  ];
}

let t: TestApp;
let simulator: Awaited<ReturnType<typeof startSimulatorProcess>>;
let mailDir: string;
/** Users that exist when the run starts (DELETE may remove some). */
const seededIds: number[] = [];

beforeAll(async () => {
  watchProcess();
  simulator = await startSimulatorProcess();
  mailDir = mkdtempSync(join(tmpdir(), 'fuzz-mail-'));
  t = await startTestApp({
    POSTS_SERVICE_URL: simulator.url,
    COMMENTS_SERVICE_URL: simulator.url,
    ADMIN_TOKEN,
    MAIL_OUTBOX_DIR: mailDir,
    PROFILE_DEADLINE_MS: '5000',
    RETRY_BASE_DELAY_MS: '1',
    RETRY_MAX_DELAY_MS: '5',
  });
  for (let i = 0; i < 3; i++) {
    const res = await send(t, {
      method: 'POST',
      path: '/users',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `Seed ${String(i)}`, email: `seed-${String(i)}@example.org` }),
    });
    // With the admin token send adds: a refused seed would leave the id properties fuzzing nothing.
    expect(res.status).toBe(201);
    seededIds.push((JSON.parse(res.body.toString()) as { id: number }).id);
  }
}, 60_000);

afterEach(async () => {
  await assertAlive(t);
});

afterAll(async () => {
  await t.close();
  await simulator.stop();
  await agent.close();
  rmSync(mailDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- shared pieces

interface Case {
  readonly category: string;
  readonly call: HttpCall;
  /** A route-specific expectation beyond the general property. */
  readonly expect?: (answer: HttpAnswer, problem: Record<string, unknown> | undefined) => string | undefined;
}

const asCase = (c: Case): Case => printable(c, (v) => `[${v.category}] ${describeCall(v.call)}`);

/** Headers any request may carry, with hostile values. */
const commonHeaders: fc.Arbitrary<Record<string, string>> = fc
  .record(
    {
      accept: acceptValue,
      'accept-encoding': fc.constantFrom('gzip', 'br, gzip;q=0', '*', 'identity;q=0', 'x'.repeat(100)),
      'accept-language': hostileHeaderValue,
      'x-request-id': hostileHeaderValue,
      'if-none-match': hostileHeaderValue,
      'if-modified-since': fc.constantFrom('Thu, 01 Jan 1970 00:00:00 GMT', 'yesterday', '', '0'),
      origin: fc.constantFrom('null', 'http://evil.example', '*', ''),
      range: fc.constantFrom('bytes=0-0', 'bytes=-1', 'bytes=99999999999-', 'bytes=a-b', 'lines=1-2'),
      cookie: hostileHeaderValue,
      'x-forwarded-for': fc.constantFrom('1.2.3.4', '::1', 'garbage', '1.2.3.4, 5.6.7.8', ''),
      'x-http-method-override': fc.constantFrom('DELETE', 'PUT', 'GET'),
      'content-encoding': fc.constantFrom('gzip', 'br', 'deflate', 'identity', 'x'),
      'user-agent': hostileHeaderValue,
    },
    { requiredKeys: [] },
  )
  .map((h) => Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined)));

/** Keeps a request inside Node's 16 KiB head limit (the oversized ones have their own property). */
const fitsHead = (c: Case): boolean =>
  c.call.path.length + Object.entries(c.call.headers ?? {}).reduce((n, [k, v]) => n + k.length + v.length + 4, 0) <
  14_000;

/**
 * Whether the router can percent-decode the path: one it cannot is Fastify's
 * FST_ERR_BAD_URL, which has its own property (so it is not reported per route).
 */
const pathDecodes = (path: string): boolean => {
  try {
    decodeURIComponent(path.split('?')[0] ?? path);
    return true;
  } catch {
    return false;
  }
};

/** Requests for the per-route properties: inside the head limit, with a path the router can decode. */
const ordinary = (c: Case): boolean => fitsHead(c) && pathDecodes(c.call.path);

/** Bodies as text: mostly JSON from `json`, sometimes not JSON, sometimes bytes that are not UTF-8. */
const bodyText = (json: fc.Arbitrary<Json>): fc.Arbitrary<string | Buffer> =>
  fc.oneof(
    { weight: 8, arbitrary: json.map(serialize) },
    { weight: 1, arbitrary: notJsonText },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
        Buffer.from('{"name":"\xff\xfe","email":"a@b.co"}', 'latin1'),
        Buffer.from([0xc0, 0x80]),
        Buffer.from('{"a":"\ud800"}', 'utf16le'),
      ),
    },
  );

const withBody = (
  category: string,
  method: string,
  path: fc.Arbitrary<string>,
  json: fc.Arbitrary<Json>,
  extraHeaders: fc.Arbitrary<Record<string, string>> = fc.constant({}),
): fc.Arbitrary<Case> =>
  fc
    .record({ path, body: bodyText(json), type: contentType, headers: commonHeaders, extra: extraHeaders })
    .map(({ path: p, body, type, headers, extra }) =>
      asCase({
        category,
        call: {
          method,
          path: p,
          headers: { ...headers, ...extra, ...(type === undefined ? {} : { 'content-type': type }) },
          body,
        },
      }),
    );

/** Sends one case and checks the general property and the case's own expectation. */
async function check(c: Case): Promise<void> {
  const answer = await send(t, c.call);
  const problem = checkAnswer(c.category, c.call, answer);
  const complaint = c.expect?.(answer, problem);
  if (complaint !== undefined) {
    throw new Violation(
      c.category,
      `${complaint}\n  request: ${describeCall(withCredential(c.call))}\n  answer: ${describeAnswer(answer)}`,
    );
  }
}

/** The general property over cases; each case's own expectation too. */
async function run(name: string, cases: fc.Arbitrary<Case>, bounded = BOUNDED): Promise<void> {
  await fuzz(t, name, cases.filter(ordinary), check, { runs: runs(bounded) });
}

const noNul = (json: fc.Arbitrary<Json>): fc.Arbitrary<Json> => json.filter((j) => !jsonHasNulOrLoneSurrogate(j));
const query = (path: string, keys: readonly string[], values: readonly string[]) =>
  queryFor(keys, values)
    .filter((q) => !hasNulOrLoneSurrogate(safeDecode(q)))
    .map((q) => (q === '' ? path : `${path}?${q}`));

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const fresh = (): string => `${String(Date.now())}-${Math.random().toString(36).slice(2, 8)}`;
const USER = { name: 'Ada Lovelace', email: 'ada@example.org' };
const NOTIFICATION = { channel: 'email', to: 'ada@example.org', subject: 'Welcome', body: 'Hello Ada' };

// ---------------------------------------------------------------- route discovery

describe('route discovery', () => {
  it("fuzzes every route in Fastify's table and in the OpenAPI document", async () => {
    const printed = t.app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false });
    const served = parsePrintedRoutes(printed);
    const known = new Map(KNOWN_ROUTES.map((r) => [r.pattern, r]));
    const unknown = [...served.keys()].filter((p) => !known.has(p));
    expect(unknown).toEqual([]);
    for (const [pattern, methods] of served) {
      const own = new Set(known.get(pattern)?.methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])));
      expect({ pattern, methods: [...methods].sort() }).toEqual({ pattern, methods: [...own].sort() });
    }
    expect([...known.keys()].filter((p) => !served.has(p))).toEqual([]);

    const doc = JSON.parse((await send(t, { method: 'GET', path: '/openapi.json' })).body.toString()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    for (const [path, operations] of Object.entries(doc.paths)) {
      const pattern = path.replace(/\{(\w+)\}/g, ':$1');
      for (const method of Object.keys(operations)) {
        expect({ path, method, known: known.get(pattern)?.methods.includes(method.toUpperCase()) ?? false }).toEqual({
          path,
          method,
          known: true,
        });
      }
    }
  });

  it('declares in the OpenAPI document the access rule of every route the table knows', async () => {
    const doc = JSON.parse((await send(t, { method: 'GET', path: '/openapi.json' })).body.toString()) as {
      paths: Record<
        string,
        Record<string, { security?: Record<string, unknown>[]; responses: Record<string, unknown> }>
      >;
      components?: { securitySchemes?: Record<string, { type?: string; scheme?: string }> };
    };
    const schemes = doc.components?.securitySchemes ?? {};
    for (const [path, operations] of Object.entries(doc.paths)) {
      const pattern = path.replace(/\{(\w+)\}/g, ':$1');
      for (const [method, operation] of Object.entries(operations)) {
        const rule = KNOWN_ROUTES.find((r) => r.pattern === pattern)?.access[method.toUpperCase()];
        if (rule === undefined) continue; // an unknown route fails the test above
        const security = (operation.security ?? []).flatMap((s) => Object.keys(s));
        const statuses = Object.keys(operation.responses);
        const declared = {
          route: `${method.toUpperCase()} ${path}`,
          bearer: security.length > 0,
          // Every scheme named is one the document defines, and an HTTP bearer one.
          schemes: security.map((name) => `${name}: ${schemes[name]?.type ?? '?'} ${schemes[name]?.scheme ?? '?'}`),
          documents401: statuses.includes('401'),
          documents403: statuses.includes('403'),
        };
        expect(declared).toEqual({
          route: declared.route,
          bearer: takesBearer(rule),
          schemes: security.map((name) => `${name}: http bearer`),
          documents401: takesBearer(rule),
          documents403: needsGrant(rule),
        });
      }
    }
  });
});

// ---------------------------------------------------------------- the general property, route by route

describe('every answer is a success or a problem document, route by route', () => {
  it(
    'GET /health, /ready, /metrics, /.well-known/jwks.json',
    async () => {
      const cases = fc
        .record({
          path: fc
            .constantFrom('/health', '/ready', '/metrics', '/.well-known/jwks.json')
            .chain((p) => query(p, ['verbose', 'name'], ['1', 'true'])),
          method: fc.constantFrom('GET', 'HEAD'),
          headers: commonHeaders,
        })
        .map(({ path, method, headers }) =>
          asCase({
            category: 'probes: query and headers',
            call: { method, path, headers },
            // The key set is the public half only: no private parameter ("d") of the signing key.
            expect: (a) =>
              a.status === 200 && /"d"\s*:/.test(a.body.toString('utf8'))
                ? 'a probe or the key set served a private key parameter'
                : undefined,
          }),
        );
      await run('GET /health, /ready, /metrics, /.well-known/jwks.json', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'GET / (web page)',
    async () => {
      const cases = fc
        .record({
          path: query('/', ['room', 'name'], ['lobby']),
          method: fc.constantFrom('GET', 'HEAD'),
          headers: commonHeaders,
        })
        .map(({ path, method, headers }) =>
          asCase({ category: 'page: query and headers', call: { method, path, headers } }),
        );
      await run('GET / (web page)', cases, 20);
    },
    timeoutFor(20),
  );

  it(
    'docs: /openapi.*, /docs and its assets',
    async () => {
      const traversal = fc.constantFrom(
        '/docs/../package.json',
        '/docs/..%2f..%2fpackage.json',
        '/docs/%2e%2e/%2e%2e/package.json',
        '/docs/..%5c..%5cpackage.json',
        '/docs/....//....//package.json',
        '/docs/%252e%252e%252fpackage.json',
        '/docs/swagger-ui.css',
        '/docs/swagger-ui-bundle.js',
        '/docs/favicon-32x32.png',
        '/docs/index.html',
        '/docs/LICENSE',
        '/docs/',
        '/docs//',
        '/docs/./index.html',
        '/docs/%00',
        '/docs/index.html%00.js',
        '/docs/\u00e9',
        '/docs/docs/swagger-ui-init.js',
      );
      const path = fc.oneof(
        fc.constantFrom('/openapi.json', '/openapi.yaml', '/docs', '/docs/swagger-ui-init.js'),
        traversal.map((p) => encodeURI(p).replace(/%25/g, '%')),
        hostileString.map((s) => `/docs/${encodePathSegment(s)}`),
      );
      const cases = fc
        .record({
          path,
          q: queryFor(['url', 'configUrl'], ['/etc/passwd']),
          method: fc.constantFrom('GET', 'HEAD'),
          headers: commonHeaders,
        })
        .map(({ path: p, q, method, headers }) =>
          asCase({
            category: 'docs: paths and assets',
            call: { method, path: q === '' ? p : `${p}?${q}`, headers },
            expect: (a) =>
              a.status === 200 &&
              /"devDependencies"|DATABASE_URL|BEGIN [A-Z ]*PRIVATE KEY/.test(a.body.toString('latin1'))
                ? 'a docs path served a file from outside the Swagger UI assets'
                : undefined,
          }),
        );
      await run('docs: /openapi.*, /docs and its assets', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'GET /resilience (admin)',
    async () => {
      const callers = await credentials();
      const minted = callers.flatMap((c) => (c.kind === 'none' ? [] : [c.authorization]));
      const authorization = fc.oneof(
        fc.constantFrom(...minted),
        fc.constantFrom(
          undefined,
          `Bearer ${ADMIN_TOKEN}`,
          ADMIN_AUTHORIZATION,
          `bearer  ${ADMIN_AUTHORIZATION.slice('Bearer '.length)} `,
          `bearer   ${ADMIN_TOKEN}  `,
          `Bearer ${ADMIN_TOKEN}x`,
          'Bearer',
          'Bearer ',
          'Basic YWRtaW46YWRtaW4=',
          `Bearer ${'x'.repeat(8_000)}`,
          `Bearer ${ADMIN_TOKEN} extra`,
          'Bearer \u00e9\u00e9',
        ),
        hostileHeaderValue.map((v) => `Bearer ${v}`),
        hostileHeaderValue,
      );
      const cases = fc
        .record({ authorization, headers: commonHeaders, path: query('/resilience', ['policy'], ['posts']) })
        .map(({ authorization: auth, headers, path }) =>
          asCase({
            category: 'admin: Authorization',
            call: {
              method: 'GET',
              path,
              // Only the credential the case names, never the one send would add.
              anonymous: true,
              headers: { ...headers, ...(auth === undefined ? {} : { authorization: auth }) },
            },
            expect: (a) => {
              const token = /^Bearer +(\S+) *$/i.exec(auth ?? '')?.[1];
              const caller = callers.find((c) => c.kind !== 'none' && c.authorization === `Bearer ${token ?? ''}`);
              const valid = token === ADMIN_TOKEN || (caller?.kind === 'verified' && caller.scopes.includes('admin'));
              if (valid && !path.includes('?')) return a.status === 200 ? undefined : 'an admin must be let in';
              if (!valid && a.status === 200) return 'a request without an admin credential was let in';
              if (auth === undefined && a.status !== 401) return 'an anonymous request must be a 401';
              if (caller?.kind === 'verified' && !valid && a.status !== 403)
                return 'a verified caller without the admin scope must be a 403';
              return undefined;
            },
          }),
        );
      await run('GET /resilience (admin)', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'POST /users',
    async () => {
      const cases = withBody('users: create bodies', 'POST', fc.constant('/users'), noNul(bodyFor(USER)));
      await run('POST /users', cases, 60);
    },
    timeoutFor(60),
  );

  it(
    'GET /users (list)',
    async () => {
      const cursors = [
        encodeCursor(0),
        encodeCursor(1),
        encodeCursor(2_147_483_647),
        Buffer.from('u1:99999999999').toString('base64url'),
        Buffer.from('u1:-1').toString('base64url'),
        Buffer.from('u2:1').toString('base64url'),
        '',
        '=',
        'a'.repeat(129),
      ];
      const cases = fc
        .record({
          path: query(
            '/users',
            ['limit', 'cursor'],
            ['1', '20', '100', '101', '0', '-1', '0x10', '1e1', '1.5', ...cursors],
          ),
          headers: commonHeaders,
          method: fc.constantFrom('GET', 'HEAD'),
        })
        .map(({ path, headers, method }) => asCase({ category: 'users: list query', call: { method, path, headers } }));
      await run('GET /users (list)', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'GET, PATCH, DELETE /users/:id',
    async () => {
      // Ids over 100 characters are Fastify's 414 (their own property below).
      const id = pathId.filter((i) => i.length <= 100);
      const get = fc
        .record({ id, headers: commonHeaders, q: queryFor(['fields'], ['name']) })
        .map(({ id: i, headers, q }) =>
          asCase({
            category: 'users: get by id',
            call: { method: 'GET', path: `/users/${i}${q === '' ? '' : `?${q}`}`, headers },
          }),
        );
      const patch = withBody(
        'users: patch bodies',
        'PATCH',
        id.map((i) => `/users/${i}`),
        noNul(bodyFor(USER)),
      );
      const del = fc
        .record({ id, headers: commonHeaders })
        .map(({ id: i, headers }) =>
          asCase({ category: 'users: delete by id', call: { method: 'DELETE', path: `/users/${i}`, headers } }),
        );
      await run('GET, PATCH, DELETE /users/:id', fc.oneof(get, patch, patch, del), 60);
    },
    timeoutFor(60),
  );

  it(
    'GET /profiles/:userId',
    async () => {
      const cases = fc
        .record({
          id: fc.oneof(
            pathId.filter((i) => i.length <= 100),
            fc.constantFrom(...seededIds.map(String)),
          ),
          ifNoneMatch: fc.option(hostileHeaderValue, { nil: undefined }),
          headers: commonHeaders,
        })
        .map(({ id, ifNoneMatch, headers }) =>
          asCase({
            category: 'profiles: id and If-None-Match',
            call: {
              method: 'GET',
              path: `/profiles/${id}`,
              headers: { ...headers, ...(ifNoneMatch === undefined ? {} : { 'if-none-match': ifNoneMatch }) },
            },
          }),
        );
      await run('GET /profiles/:userId', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'POST /profiles/batch',
    async () => {
      const ids = fc.oneof(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 }).map((a) => fromValue({ userIds: a })),
        fc
          .constantFrom(0, 1, 100, 101, 1_000)
          .map((n) => fromValue({ userIds: Array.from({ length: n }, (_, i) => 1_000_000 + i) })),
        noNul(bodyFor({ userIds: [1, 2, 3] })),
        hostileJson.map((j) => obj([['userIds', { t: 'arr', items: [j] }]])),
      );
      await run(
        'POST /profiles/batch',
        withBody('profiles: batch bodies', 'POST', fc.constant('/profiles/batch'), ids),
      );
    },
    timeoutFor(BOUNDED),
  );

  it(
    'POST /notifications',
    async () => {
      const key = fc.option(
        fc
          .oneof(
            fc.constantFrom('k-1', 'k-1', 'a'.repeat(200), 'a'.repeat(201), 'key with spaces', 'ключ', 'k=1/+~', 'a,b'),
            hostileHeaderValue,
          )
          .map(asHeaderValue),
        { nil: undefined },
      );
      const cases = fc
        .record({
          c: withBody(
            'notifications: bodies and Idempotency-Key',
            'POST',
            fc.constant('/notifications'),
            noNul(bodyFor(NOTIFICATION)),
          ),
          key,
        })
        .map(({ c, key: k }) =>
          asCase({
            ...c,
            call: { ...c.call, headers: { ...c.call.headers, ...(k === undefined ? {} : { 'idempotency-key': k }) } },
            expect: (a) =>
              k !== undefined && !/^[A-Za-z0-9\-_.:~+/=]{1,200}$/.test(k) && a.status < 400
                ? 'an Idempotency-Key outside 1..200 of [A-Za-z0-9-_.:~+/=] was accepted'
                : undefined,
          }),
        );
      await run('POST /notifications', cases, 50);
    },
    timeoutFor(50),
  );

  it(
    'GET /notifications/:id',
    async () => {
      const cases = fc
        .record({ id: uuidId.filter((i) => i.length <= 100), headers: commonHeaders })
        .map(({ id, headers }) =>
          asCase({
            category: 'notifications: get by id',
            call: { method: 'GET', path: `/notifications/${id}`, headers },
          }),
        );
      await run('GET /notifications/:id', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'POST /process-data',
    async () => {
      const values = fc.oneof(
        noNul(bodyFor({ values: [3, 1.5, -2, 8] })),
        fc.array(hostileJson, { maxLength: 8 }).map((items) => obj([['values', { t: 'arr', items }]])),
        fc
          .constantFrom('1e308', '-1e308', '1.7976931348623157e308', '5e-324', '-0', '0', '1e-400', '9007199254740993')
          .chain((tok) => fc.integer({ min: 1, max: 50 }).map((n) => `{"values":[${Array(n).fill(tok).join(',')}]}`))
          .map(raw),
        fc.constantFrom(1_000_000, 1_000_001).map((n) => raw(`{"values":[${'1,'.repeat(n - 1)}1]}`)),
      );
      await run(
        'POST /process-data',
        withBody('compute: process-data bodies', 'POST', fc.constant('/process-data'), values),
      );
    },
    timeoutFor(BOUNDED),
  );

  it(
    'GET /stream and /events (SSE)',
    async () => {
      const stream = query(
        '/stream',
        ['count', 'intervalMs'],
        ['1', '0', '10000', '10001', '-1', '0x10', '1e3', '1.5', ' 1', ''],
      );
      const events = query(
        '/events',
        ['types', 'lastEventId'],
        ['user.created', 'user.created,user.deleted', ',,,', 'nope', '0', '999999999999999', '9'.repeat(16), '-1'],
      );
      const cases = fc
        .record({
          path: fc.oneof(stream, events),
          lastEventId: fc.option(
            fc.oneof(fc.constantFrom('0', '1', '9'.repeat(15), '9'.repeat(16), '-1', ' 1 ', 'abc'), hostileHeaderValue),
            { nil: undefined },
          ),
          headers: commonHeaders,
        })
        .map(({ path, lastEventId, headers }) =>
          asCase({
            category: 'streams: query and Last-Event-ID',
            call: {
              method: 'GET',
              path,
              headers: { ...headers, ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
            },
            expect: (a) =>
              a.status === 200 && !a.streamed
                ? 'a 200 from an event stream route must be text/event-stream'
                : undefined,
          }),
        );
      await run('GET /stream and /events (SSE)', cases);
    },
    timeoutFor(BOUNDED),
  );

  it(
    'unknown paths',
    async () => {
      const path = fc.oneof(
        hostileString.map((s) => `/${encodePathSegment(s)}`),
        fc.constantFrom(
          '/users/1/extra',
          '/users//1',
          '//users',
          '/Users',
          '/USERS/1',
          '/users/1/',
          '/profiles/',
          '/notifications/',
          '/ws',
          '/api',
          '/.env',
          '/.git/config',
          '/%2e%2e/%2e%2e/etc/passwd',
        ),
      );
      const cases = fc
        .record({
          path,
          method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'),
          headers: commonHeaders,
        })
        .map(({ path: p, method, headers }) =>
          asCase({ category: 'unknown paths', call: { method, path: p, headers } }),
        );
      await run('unknown paths', cases, 30);
    },
    timeoutFor(30),
  );
});

// ---------------------------------------------------------------- contracts of the input categories

describe('input categories', () => {
  describe('access', () => {
    let callers: Credential[];
    /** Every method served at every concrete path, with the rule the table gives it. */
    const targets = CONCRETE_PATHS.flatMap((path) =>
      [...methodsAt(path)].map((method) => ({ method, path, rule: routeAt(method, path)!.access })),
    );
    type Target = (typeof targets)[number];
    beforeAll(async () => {
      callers = await credentials();
    });

    /** What the rule owes this caller: a 401, a 403, or a way in (whatever the handler then answers). */
    function owed({ path, rule }: Target, caller: Credential): 401 | 403 | 'in' {
      if (caller.kind === 'invalid') return 401;
      if (caller.kind === 'none') return needsCaller(rule) ? 401 : 'in';
      const admin = caller.scopes.includes('admin');
      if (rule.kind === 'scope') return admin || caller.scopes.includes(rule.scope) ? 'in' : 403;
      if (rule.kind === 'self-or-admin')
        return admin || path.split('?')[0]?.split('/').at(-1) === caller.sub ? 'in' : 403;
      return 'in';
    }

    function accessCase(target: Target, caller: Credential, body: string, headers: Record<string, string>): Case {
      const { method, path, rule } = target;
      const writes = ['POST', 'PATCH', 'PUT'].includes(method);
      const due = owed(target, caller);
      return asCase({
        category: `access: ${caller.label} on ${rule.kind}`,
        call: {
          method,
          path,
          // Only the credential the case names, never the one send would add.
          anonymous: true,
          headers: {
            ...headers,
            ...(caller.kind === 'none' ? {} : { authorization: caller.authorization }),
            ...(writes ? { 'content-type': 'application/json' } : {}),
          },
          ...(writes ? { body } : {}),
        },
        expect: (a, problem) => {
          const challenge = a.headers['www-authenticate'] ?? '';
          // The anonymous budget of routes open to anyone may run out first: a 429 comes before the rule.
          if (rule.kind === 'anyone' && caller.kind !== 'verified' && a.status === 429) return undefined;
          if (due === 401) {
            if (a.status !== 401) return `expected 401 for ${caller.label} (${rule.kind}), got ${String(a.status)}`;
            if (method !== 'HEAD' && problem?.['code'] !== 'invalid_token') return 'a 401 must be invalid_token';
            if (!/^Bearer .*error="invalid_token"/.test(challenge))
              return `a 401 must challenge with Bearer error="invalid_token"; got "${challenge}"`;
            return undefined;
          }
          if (due === 403) {
            if (a.status !== 403)
              return `expected 403 for ${caller.label} (${JSON.stringify(rule)}), got ${String(a.status)}`;
            if (method !== 'HEAD' && problem?.['code'] !== 'insufficient_scope')
              return 'a 403 must be insufficient_scope';
            if (!/^Bearer .*error="insufficient_scope"/.test(challenge))
              return `a 403 must challenge with Bearer error="insufficient_scope"; got "${challenge}"`;
            return undefined;
          }
          return a.status === 401 || a.status === 403
            ? `${caller.label} may call ${method} ${path} (${rule.kind}), got ${String(a.status)}`
            : undefined;
        },
      });
    }

    it('every route decides by its rule for every kind of caller, before reading a malformed body', async () => {
      const logMark = t.logs.length;
      const violations: string[] = [];
      for (const target of targets) {
        for (const caller of callers) {
          try {
            await check(accessCase(target, caller, '{"name":', {}));
          } catch (error) {
            violations.push((error as Error).message);
          }
        }
      }
      expect(violations).toEqual([]);
      expect(t.logs.slice(logMark).filter(isErrorLine)).toEqual([]);
    });

    it(
      "access under hostile bodies and headers: each route's rule still decides",
      async () => {
        // Bodies the routes would refuse (400) or accept: the credential is judged first either way.
        const body = fc.oneof(
          fc.constantFrom('{}', '{"name":"Ada","email":"ada-access@example.org"}', '{"values":[1,2]}'),
          hostileJson.map(serialize),
          notJsonText,
        );
        const cases = fc
          .record({
            target: fc.constantFrom(...targets),
            caller: fc.constantFrom(...callers),
            body,
            headers: commonHeaders,
          })
          .map(({ target, caller, body: b, headers }) => accessCase(target, caller, b, headers));
        await run("access under hostile bodies and headers: each route's rule still decides", cases, 60);
      },
      timeoutFor(60),
    );
  });

  it(
    'NUL and unpaired surrogates in body and query strings are a 400, never stored or a 500',
    async () => {
      const target = await send(t, {
        method: 'POST',
        path: '/users',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Nul Target', email: `nul-${fresh()}@example.org` }),
      });
      expect(target.status).toBe(201);
      const targetId = (JSON.parse(target.body.toString()) as { id: number }).id;
      const inField = (template: Record<string, string>) =>
        fc
          .constantFrom(...Object.keys(template))
          .chain((field) =>
            nulOrSurrogateIn(template[field] ?? '').map((value) =>
              obj(Object.entries(template).map(([k, v]) => [k, str(k === field ? value : v)] as const)),
            ),
          );
      const body = (category: string, method: string, path: string, template: Record<string, string>) =>
        inField(template).map((json) =>
          asCase({
            category,
            call: { method, path, headers: { 'content-type': 'application/json' }, body: serialize(json) },
            expect: (a) => (a.status === 400 ? undefined : 'a string with NUL or a lone surrogate must be a 400'),
          }),
        );
      const inQuery = (category: string, path: string, key: string, valid: string) =>
        nulOrSurrogateIn(valid).map((value) =>
          asCase({
            category,
            call: { method: 'GET', path: `${path}?${key}=${encodePathSegment(value)}` },
            expect: (a) => (a.status === 400 ? undefined : 'a query string with NUL or a lone surrogate must be a 400'),
          }),
        );
      const cases = fc.oneof(
        body('strings: POST /users', 'POST', '/users', { name: 'Ada', email: `ada-${fresh()}@example.org` }),
        body('strings: PATCH /users/:id', 'PATCH', `/users/${String(targetId)}`, {
          name: 'Ada',
          email: `ada-${fresh()}@example.org`,
        }),
        body('strings: POST /notifications', 'POST', '/notifications', {
          channel: 'email',
          to: 'ada@example.org',
          subject: 'Welcome',
          body: 'Hello Ada',
        }),
        inQuery('strings: GET /users?cursor', '/users', 'cursor', encodeCursor(1)),
        inQuery('strings: GET /events?lastEventId', '/events', 'lastEventId', '1'),
        inQuery('strings: GET /events?types', '/events', 'types', 'user.created'),
        inQuery('strings: GET /stream?count', '/stream', 'count', '1'),
      );
      await run('NUL and unpaired surrogates in body and query strings are a 400, never stored or a 500', cases, 30);
    },
    timeoutFor(30),
  );

  it(
    'path ids: only a canonical decimal id in 1..2^31-1 is accepted; every other id is a 400',
    async () => {
      // Over 100 characters is Fastify's 414, an undecodable escape its FST_ERR_BAD_URL: both have their own property.
      // Dot segments (`%2e%2e`) are resolved away by the client's URL parser, so they never reach the server as ids.
      const id = fc
        .oneof(fc.constantFrom(...ID_ATOMS), pathId)
        .filter(
          (i) => i.length <= 100 && pathDecodes(i) && new URL(`/users/${i}`, 'http://x').pathname === `/users/${i}`,
        );
      const cases = fc
        .record({ id, route: fc.constantFrom('GET /users/', 'PATCH /users/', 'DELETE /users/', 'GET /profiles/') })
        .map(({ id: i, route }) => {
          const [method = 'GET', prefix = '/'] = route.split(' ');
          const accepted = acceptedId(i) !== undefined;
          return asCase({
            category: `ids: ${route}:id`,
            call: {
              method,
              path: `${prefix}${i}`,
              ...(method === 'PATCH' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
            },
            expect: (a) => {
              // An accepted id may still meet a 400 for the (empty) body: only a 400 naming the id counts.
              if (accepted && a.status === 400 && /"field":"(?:id|userId)"/.test(a.body.toString('utf8')))
                return `the id ${preview(i)} is a decimal id in range and must be accepted`;
              // An empty id is no route at all: a 404.
              if (!accepted && a.status !== 400 && !(i === '' && a.status === 404))
                return `the id ${preview(i)} is not a decimal id in range: expected 400`;
              return undefined;
            },
          });
        });
      await run('path ids: only a canonical decimal id in 1..2^31-1 is accepted; every other id is a 400', cases, 60);
    },
    timeoutFor(60),
  );

  it(
    'query integers (limit, count, intervalMs): hex, exponent, sign, fraction and other digits are a 400',
    async () => {
      const value = fc.oneof(
        fc.constantFrom(
          '1',
          '20',
          '100',
          '101',
          '0',
          '00',
          '007',
          '-0',
          '-1',
          '+1',
          '0x10',
          '0X0A',
          '0b1',
          '0o7',
          '1e1',
          '1E2',
          '1.0',
          '1.5',
          '.5',
          '1_0',
          'Infinity',
          'NaN',
          '',
          ' 1',
          '%201',
          '%EF%BC%91',
          '%D9%A1',
          '1%00',
          '9'.repeat(20),
        ),
        fc.integer({ min: -5, max: 20_000 }).map(String),
      );
      const cases = fc
        .record({ v: value, route: fc.constantFrom('limit', 'count', 'intervalMs') })
        .map(({ v, route }) => {
          const [path, min, max] =
            route === 'limit'
              ? [`/users?limit=${v}`, 1, 100]
              : route === 'count'
                ? [`/stream?count=${v}&intervalMs=0`, 1, 10_000]
                : [`/stream?count=1&intervalMs=${v}`, 0, 10_000];
          const verdict = decimalVerdict(v, min, max);
          return asCase({
            category: `query integers: ${route}`,
            call: { method: 'GET', path },
            expect: (a) => {
              if (verdict === 'accept' && a.status !== 200)
                return `${route}=${v} is a decimal in ${String(min)}..${String(max)}: expected 200`;
              if (verdict === 'reject' && a.status !== 400)
                return `${route}=${v} is not a decimal integer in range: expected 400`;
              return undefined;
            },
          });
        });
      await run(
        'query integers (limit, count, intervalMs): hex, exponent, sign, fraction and other digits are a 400',
        cases,
        60,
      );
    },
    timeoutFor(60),
  );

  it(
    'every method on every known path: a method a path does not serve is a 405 with Allow',
    async () => {
      // The methods Node's HTTP parser accepts (others are malformed HTTP, their own property).
      const methods = [
        'GET',
        'HEAD',
        'POST',
        'PUT',
        'PATCH',
        'DELETE',
        'OPTIONS',
        'TRACE',
        'PROPFIND',
        'PROPPATCH',
        'MKCOL',
        'COPY',
        'MOVE',
        'LOCK',
        'UNLOCK',
        'SEARCH',
        'PURGE',
        'LINK',
        'UNLINK',
        'REPORT',
        'MKACTIVITY',
        'CHECKOUT',
        'MERGE',
        'NOTIFY',
        'SUBSCRIBE',
        'UNSUBSCRIBE',
        'MKCALENDAR',
        'QUERY',
        'ACL',
        'BIND',
        'REBIND',
        'UNBIND',
        'SOURCE',
      ];
      const cases = fc
        .record({ path: fc.constantFrom(...CONCRETE_PATHS), method: fc.constantFrom(...methods) })
        .map(({ path, method }) => {
          const served = methodsAt(path);
          return asCase({
            category: `methods: ${method}`,
            call: {
              method,
              path,
              ...(['POST', 'PUT', 'PATCH', 'QUERY'].includes(method)
                ? { headers: { 'content-type': 'application/json' }, body: '{}' }
                : {}),
            },
            expect: (a) => {
              if (served.has(method))
                return a.status === 405 ? `${method} is served at ${path} but answered 405` : undefined;
              const allow = new Set(
                (a.headers['allow'] ?? '')
                  .split(',')
                  .map((m) => m.trim())
                  .filter((m) => m !== ''),
              );
              const missing = [...served].filter((m) => m !== 'HEAD' && !allow.has(m));
              if (method === 'OPTIONS' && [200, 204].includes(a.status) && missing.length === 0) return undefined;
              if (a.status !== 405)
                return `${method} ${path} is not served there: expected 405, got ${String(a.status)}`;
              if (missing.length > 0 || allow.has(method))
                return `Allow must list ${[...served].join(', ')}; got "${a.headers['allow'] ?? ''}"`;
              return undefined;
            },
          });
        });
      await run('every method on every known path: a method a path does not serve is a 405 with Allow', cases, 60);
    },
    timeoutFor(60),
  );

  it(
    "Fastify's own refusals (bad URL escapes, 414 long params, 431 big heads) are problem documents",
    async () => {
      const cases = fc.oneof(
        fc
          .constantFrom(
            '/users/%zz',
            '/%zz',
            '/users/%',
            '/profiles/%E0%A4%A',
            '/notifications/%C0',
            '/docs/%zz',
            '/%ED%A0%80',
            '/users/%ED%A0%80',
          )
          .map((path) => asCase({ category: 'fastify: bad URL escape', call: { method: 'GET', path } })),
        fc
          .constantFrom('/users/', '/profiles/', '/notifications/')
          .chain((p) => fc.integer({ min: 101, max: 5_000 }).map((n) => `${p}${'1'.repeat(n)}`))
          .map((path) =>
            asCase({
              category: 'fastify: 414 param too long',
              call: { method: 'GET', path },
              expect: (a) =>
                a.status === 414 || a.status === 400
                  ? undefined
                  : 'a path parameter over 100 characters must be refused',
            }),
          ),
        fc.constantFrom(17_000, 40_000, 100_000).map((n) =>
          asCase({
            category: 'fastify: 431 header too large',
            call: { method: 'GET', path: '/users', headers: { 'x-big': 'a'.repeat(n) } },
          }),
        ),
        fc.constantFrom(17_000, 40_000).map((n) =>
          asCase({
            category: 'fastify: 431/414 URL too long',
            call: { method: 'GET', path: `/users?cursor=${'a'.repeat(n)}` },
          }),
        ),
      );
      await fuzz(
        t,
        "Fastify's own refusals (bad URL escapes, 414 long params, 431 big heads) are problem documents",
        cases,
        async (c) => {
          // Over raw sockets: undici refuses some of these before sending.
          const head = `${c.call.method} ${c.call.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(
            c.call.headers ?? {},
          )
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join('')}Connection: close\r\n\r\n`;
          const { answer, timedOut } = await sendRaw(t, Buffer.from(head, 'latin1'));
          if (answer === undefined)
            throw new Violation(c.category, `no answer (timed out: ${String(timedOut)}) to ${describeCall(c.call)}`);
          checkAnswer(c.category, c.call, answer);
          const complaint = c.expect?.(answer, undefined);
          if (complaint !== undefined) throw new Violation(c.category, `${complaint}: ${describeAnswer(answer)}`);
        },
        { runs: runs(20) },
      );
    },
    timeoutFor(20),
  );

  it(
    'malformed HTTP over raw sockets: any answer is a problem document, never a 5xx',
    async () => {
      const method = fc.constantFrom('GET', 'POST', 'PATCH', 'get', 'G3T', 'FOO', 'CONNECT', 'GET GET', '', 'POST\t');
      const target = fc.constantFrom(
        '/users',
        '/users/1',
        '/process-data',
        '/notifications',
        '*',
        'http://127.0.0.1/users',
        '/users?x=1 2',
        '/us\u0000ers',
        '/users\t',
        'users',
        '',
        '/users#frag',
        '/\u00e9',
      );
      const version = fc.constantFrom(
        'HTTP/1.1',
        'HTTP/1.1',
        'HTTP/1.0',
        'HTTP/2.0',
        'HTTP/0.9',
        'HTTX/1.1',
        'HTTP/1.1 x',
        '',
        'http/1.1',
        'HTTP/1.10',
      );
      const badHeader = fc.constantFrom(
        'Content-Length: abc',
        'Content-Length: -1',
        'Content-Length: 1, 2',
        'Content-Length: 99999999999999999999',
        'Content-Length: 5\r\nContent-Length: 6',
        'Transfer-Encoding: chunked\r\nContent-Length: 3',
        'Transfer-Encoding: gzip',
        'Transfer-Encoding: chunked, chunked',
        'Transfer-Encoding: xchunked',
        'Host: a\r\nHost: b',
        'Host: \u0000',
        'X-A: a\u0000b',
        'X-A: a\u0001b',
        'X A: b',
        'X-A b',
        ': empty-name',
        'X-A:\r\n folded',
        'Idempotency-Key: \u00ff\u00fe',
        'Content-Type: application/json\u0000',
        'Expect: 100-continue',
        'Expect: 200-ok',
        'Connection: upgrade\r\nUpgrade: h2c',
        'Accept: \u00e9',
      );
      const body = fc.constantFrom(
        '',
        '{}',
        '{"name":"a","email":"a@b.co"}',
        'zz\r\n',
        '3\r\nabc\r\n0\r\n\r\n',
        '5\r\nab\r\n',
        '\u0000\u0000',
      );
      const cases = fc
        .record({
          method,
          target,
          version,
          headers: fc.array(badHeader, { maxLength: 3 }),
          body,
          lf: fc.boolean(),
          host: fc.boolean(),
        })
        .map((r) => {
          const eol = r.lf ? '\n' : '\r\n';
          const text = `${r.method} ${r.target} ${r.version}${eol}${r.host ? `Host: 127.0.0.1${eol}` : ''}${r.headers.map((h) => `${h}${eol}`).join('')}${eol}${r.body}`;
          return printable({ text, method: r.method }, (v) => JSON.stringify(v.text));
        });
      await fuzz(
        t,
        'malformed HTTP over raw sockets: any answer is a problem document, never a 5xx',
        cases,
        async (c) => {
          const { answer } = await sendRaw(t, Buffer.from(c.text, 'latin1'), 1_500);
          if (answer === undefined) return; // waiting for more bytes, or closing at once, is fine for a broken request
          checkAnswer(
            `malformed HTTP: ${answer.status >= 500 ? '5xx' : 'refusal'}`,
            { method: c.method.trim() === '' ? 'GET' : c.method, path: c.text.slice(0, 60) },
            answer,
          );
        },
        { runs: runs(BOUNDED) },
      );
    },
    timeoutFor(BOUNDED),
  );
});
