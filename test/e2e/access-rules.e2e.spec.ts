import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Module } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../src/app.factory.js';
import { parseConfig } from '../../src/config/load-config.js';
import { hmacWithPublicKey, tamperedToken, unsignedToken } from '../support/jwt-forge.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer, mintToken, mintWith, TEST_KEYS_DIR } from '../support/tokens.js';

/**
 * Every route's access rule, table-driven through the real app: for each
 * route, which callers get in and which are refused with 401 or 403, plus
 * every kind of bad token on a public and on a protected route.
 */

const OPERATOR_TOKEN = 'operator-static-token-0123456789';

let t: TestApp;
let ownerId: string;
let tokens: Record<string, string | undefined>;
let ownNotification: string;

const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });

interface Route {
  readonly name: string;
  readonly method: string;
  readonly path: () => string;
  readonly body?: () => unknown;
}

const ROUTES = {
  listUsers: { name: 'GET /users', method: 'GET', path: () => '/users?limit=1' },
  getUser: { name: 'GET /users/:id', method: 'GET', path: () => `/users/${ownerId}` },
  createUser: {
    name: 'POST /users',
    method: 'POST',
    path: () => '/users',
    body: () => ({ name: 'Table Row', email: `row-${String(Math.random()).slice(2)}@example.org` }),
  },
  updateUser: {
    name: 'PATCH /users/:id',
    method: 'PATCH',
    path: () => `/users/${ownerId}`,
    body: () => ({ name: 'Renamed' }),
  },
  profile: { name: 'GET /profiles/:id', method: 'GET', path: () => `/profiles/${ownerId}` },
  batch: {
    name: 'POST /profiles/batch',
    method: 'POST',
    path: () => '/profiles/batch',
    body: () => ({ userIds: [1] }),
  },
  notify: {
    name: 'POST /notifications',
    method: 'POST',
    path: () => '/notifications',
    body: () => ({ channel: 'email', to: 'table@example.org', subject: 'Table', body: 'Row' }),
  },
  readNotification: { name: 'GET /notifications/:id', method: 'GET', path: () => `/notifications/${ownNotification}` },
  processData: {
    name: 'POST /process-data',
    method: 'POST',
    path: () => '/process-data',
    body: () => ({ values: [1, 2, 3] }),
  },
  resilience: { name: 'GET /resilience', method: 'GET', path: () => '/resilience' },
  stream: { name: 'GET /stream', method: 'GET', path: () => '/stream?count=1&intervalMs=0' },
  health: { name: 'GET /health', method: 'GET', path: () => '/health' },
  ready: { name: 'GET /ready', method: 'GET', path: () => '/ready' },
  metrics: { name: 'GET /metrics', method: 'GET', path: () => '/metrics' },
  page: { name: 'GET /', method: 'GET', path: () => '/' },
  jwks: { name: 'GET /.well-known/jwks.json', method: 'GET', path: () => '/.well-known/jwks.json' },
  openapi: { name: 'GET /openapi.json', method: 'GET', path: () => '/openapi.json' },
} satisfies Record<string, Route>;

async function call(route: Route, token: string | undefined, base = t.url): Promise<Response> {
  const body = route.body?.();
  const res = await fetch(`${base}${route.path()}`, {
    method: route.method,
    headers: {
      ...(token === undefined ? {} : bearer(token)),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.arrayBuffer();
  return res;
}

beforeAll(async () => {
  t = await startTestApp({ ADMIN_TOKEN: OPERATOR_TOKEN });
  const created = await fetch(`${t.url}/users`, {
    method: 'POST',
    headers: { ...bearer(ADMIN), 'content-type': 'application/json' },
    body: json({ name: 'Owner', email: 'owner@example.org' }).body,
  });
  ownerId = String(((await created.json()) as { id: number }).id);
  const notifier = await mintToken({ sub: 'notifier', scope: 'notifications:write' });
  const sent = await fetch(`${t.url}/notifications`, {
    method: 'POST',
    headers: { ...bearer(notifier), 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'email', to: 'owner@example.org', subject: 'Own', body: 'Mine' }),
  });
  ownNotification = ((await sent.json()) as { id: string }).id;
  tokens = {
    anonymous: undefined,
    wrongScope: await mintToken({ sub: 'stranger', scope: 'chat:write' }),
    usersWrite: await mintToken({ sub: 'writer', scope: 'users:write' }),
    notifier,
    owner: await mintToken({ sub: ownerId }),
    admin: ADMIN,
    operator: OPERATOR_TOKEN,
  };
}, 60_000);

afterAll(async () => {
  await t.close();
});

type Who = 'anonymous' | 'wrongScope' | 'usersWrite' | 'notifier' | 'owner' | 'admin' | 'operator';
const EVERYONE: readonly Who[] = ['anonymous', 'wrongScope', 'usersWrite', 'notifier', 'owner', 'admin', 'operator'];

/** [route, who gets in; everyone else's status] */
const RULES: readonly [Route, readonly Who[], Partial<Record<Who, 401 | 403 | 404>>][] = [
  [ROUTES.listUsers, EVERYONE, {}],
  [ROUTES.getUser, EVERYONE, {}],
  [ROUTES.profile, EVERYONE, {}],
  [ROUTES.batch, EVERYONE, {}],
  [ROUTES.stream, EVERYONE, {}],
  [ROUTES.processData, EVERYONE, {}],
  [ROUTES.health, EVERYONE, {}],
  [ROUTES.ready, EVERYONE, {}],
  [ROUTES.metrics, EVERYONE, {}],
  [ROUTES.page, EVERYONE, {}],
  [ROUTES.jwks, EVERYONE, {}],
  [ROUTES.openapi, EVERYONE, {}],
  [
    ROUTES.createUser,
    ['usersWrite', 'admin', 'operator'],
    { anonymous: 401, wrongScope: 403, notifier: 403, owner: 403 },
  ],
  [
    ROUTES.updateUser,
    ['owner', 'admin', 'operator'],
    { anonymous: 401, wrongScope: 403, usersWrite: 403, notifier: 403 },
  ],
  [ROUTES.notify, ['notifier', 'admin', 'operator'], { anonymous: 401, wrongScope: 403, usersWrite: 403, owner: 403 }],
  [
    ROUTES.readNotification,
    ['notifier', 'admin', 'operator'],
    { anonymous: 401, wrongScope: 404, usersWrite: 404, owner: 404 },
  ],
  [
    ROUTES.resilience,
    ['admin', 'operator'],
    { anonymous: 401, wrongScope: 403, usersWrite: 403, notifier: 403, owner: 403 },
  ],
];

describe('access rules, route by route', () => {
  it('covers every caller on every route of the table', () => {
    for (const [route, allowed, refused] of RULES) {
      expect([...allowed, ...Object.keys(refused)].sort()).toEqual([...EVERYONE].sort());
      expect(route.name).toBeTruthy();
    }
  });

  describe.each(RULES.map(([route, allowed, refused]) => [route.name, route, allowed, refused] as const))(
    '%s',
    (_name, route, allowed, refused) => {
      it.each(EVERYONE.map((who) => [who]))('as %s', async (who) => {
        const res = await call(route, tokens[who]);
        const expected = refused[who];
        if (expected === undefined) {
          expect(allowed).toContain(who);
          expect([401, 403]).not.toContain(res.status);
          expect(res.status).toBeLessThan(500);
        } else {
          expect(res.status).toBe(expected);
          expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        }
        if (expected === 401) {
          expect(res.headers.get('www-authenticate')).toBe(
            'Bearer realm="nest-async-api", error="invalid_token", error_description="This request needs a bearer token"',
          );
        }
        if (expected === 403) {
          expect(res.headers.get('www-authenticate')).toMatch(
            /^Bearer realm="nest-async-api", error="insufficient_scope", scope="[a-z:]+"$/,
          );
        }
      });
    },
  );

  it('lets a user delete only their own account (or an admin any)', async () => {
    const make = async (name: string) =>
      (
        (await (
          await fetch(`${t.url}/users`, {
            method: 'POST',
            headers: { ...bearer(ADMIN), 'content-type': 'application/json' },
            body: JSON.stringify({ name, email: `${name}@example.org` }),
          })
        ).json()) as { id: number }
      ).id;
    const mine = await make('deleter');
    const theirs = await make('victim');
    const me = await mintToken({ sub: String(mine) });
    const del = (id: number, token?: string) =>
      fetch(`${t.url}/users/${String(id)}`, { method: 'DELETE', headers: token === undefined ? {} : bearer(token) });
    expect((await del(theirs)).status).toBe(401);
    const refused = await del(theirs, me);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toContain('scope="admin"');
    expect((await fetch(`${t.url}/users/${String(theirs)}`)).status).toBe(200);
    expect((await del(mine, me)).status).toBe(204);
    expect((await del(theirs, ADMIN)).status).toBe(204);
  });

  it('reads the 403 scope from the rule: POST /users names users:write', async () => {
    const res = await call(ROUTES.createUser, tokens['wrongScope']);
    expect(res.headers.get('www-authenticate')).toContain('scope="users:write"');
  });
});

describe('tokens that must not verify', () => {
  let bad: Record<string, string>;
  let otherKeys: string;

  beforeAll(async () => {
    otherKeys = mkdtempSync(join(tmpdir(), 'other-issuer-'));
    const good = await mintToken({ sub: 'tamperer', scope: 'chat:write' });
    const jwks = (await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    bad = {
      expired: await mintToken({ sub: 'late', scope: 'admin', ttlS: -120 }),
      'not yet valid': await mintToken({ sub: 'early', scope: 'admin', notBeforeS: 600 }),
      'wrong issuer': await mintWith({ issuer: 'https://evil.example' }, { sub: 'x', scope: 'admin' }),
      'wrong audience': await mintWith({ audience: 'another-api' }, { sub: 'x', scope: 'admin' }),
      'signed by a key the set does not hold': await mintWith({ keysDir: otherKeys }, { sub: 'x', scope: 'admin' }),
      'alg none': unsignedToken(),
      'HS256 keyed with the public key': hmacWithPublicKey(JSON.stringify(jwks.keys[0]), jwks.keys[0]?.kid),
      'tampered payload': tamperedToken(good),
      garbage: 'not-a-token',
      'three dots of nothing': '..',
      'header that is not JSON': `${Buffer.from('nope').toString('base64url')}.e30.sig`,
      'too long': 'a'.repeat(9000),
    };
  });

  afterAll(() => {
    rmSync(otherKeys, { recursive: true, force: true });
  });

  const CASES = [
    'expired',
    'not yet valid',
    'wrong issuer',
    'wrong audience',
    'signed by a key the set does not hold',
    'alg none',
    'HS256 keyed with the public key',
    'tampered payload',
    'garbage',
    'three dots of nothing',
    'header that is not JSON',
    'too long',
  ];

  it.each(CASES.map((c) => [c]))(
    'refuses a token that is %s with 401, on protected and public routes',
    async (name) => {
      for (const route of [ROUTES.createUser, ROUTES.resilience, ROUTES.listUsers]) {
        const res = await call(route, bad[name]);
        expect(res.status).toBe(401);
        const challenge = res.headers.get('www-authenticate') ?? '';
        expect(challenge).toMatch(/^Bearer realm="nest-async-api", error="invalid_token", error_description="[^"]+"$/);
        // The description says expired or invalid, never which check failed.
        expect(challenge).not.toMatch(/issuer|audience|signature|kid|alg/i);
        if (name === 'expired') expect(challenge).toContain('expired');
      }
    },
  );

  it.each([['Basic dXNlcjpwYXNz'], ['Bearer'], ['Bearer two words'], ['bearer']])(
    'refuses the Authorization header %j with 401',
    async (header) => {
      const res = await fetch(`${t.url}/users?limit=1`, { headers: { authorization: header } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_token');
    },
  );

  it('accepts the Bearer scheme in any case and keeps the caller it verified', async () => {
    const token = await mintToken({ sub: 'casey', scope: 'users:write' });
    const res = await fetch(`${t.url}/users`, {
      method: 'POST',
      headers: { authorization: `bEaReR ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Casey', email: 'casey@example.org' }),
    });
    expect(res.status).toBe(201);
  });
});

describe('AUTH_PUBLIC_READS=false', () => {
  let closed: TestApp;
  beforeAll(async () => {
    closed = await startTestApp({ AUTH_PUBLIC_READS: 'false' });
  });
  afterAll(async () => {
    await closed.close();
  });

  it('makes reads need a verified token, any scope, while probes, metrics and the key set stay open', async () => {
    const reader = await mintToken({ sub: 'reader' });
    for (const route of [ROUTES.listUsers, ROUTES.batch, ROUTES.stream]) {
      expect((await call(route, undefined, closed.url)).status).toBe(401);
      expect((await call(route, reader, closed.url)).status).toBe(200);
    }
    for (const route of [ROUTES.health, ROUTES.ready, ROUTES.metrics, ROUTES.jwks, ROUTES.page]) {
      expect((await call(route, undefined, closed.url)).status).toBe(200);
    }
  });
});

describe('the boot check', () => {
  it('refuses to start an app with a route that declares no access rule', async () => {
    @Controller('forgotten')
    class ForgottenController {
      @Get()
      open(): string {
        return 'oops';
      }
    }
    @Module({ controllers: [ForgottenController] })
    class ForgottenModule {}
    const config = parseConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      PGLITE_DATA_DIR: 'memory://',
      AUTH_KEYS_DIR: TEST_KEYS_DIR,
      NOTIFY_WORKER_ENABLED: 'false',
    });
    await expect(createApp(config, { extraImports: [ForgottenModule] })).rejects.toThrow(
      /GET \/forgotten declares no access rule/,
    );
  });
});
