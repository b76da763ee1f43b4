import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startProxiedDatabase, type ProxiedDatabase } from '../support/proxied-database.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer } from '../support/tokens.js';

/**
 * The app reaches its database through a TCP proxy the test can cut, which
 * looks to the app exactly like the database server going away (open
 * connections drop, new ones are refused) and coming back on the same address.
 */

let t: TestApp | undefined;
let proxy: TcpProxy | undefined;
let database: ProxiedDatabase | undefined;

function app(): TestApp {
  if (t === undefined) throw new Error('app did not start');
  return t;
}

beforeAll(async () => {
  database = await startProxiedDatabase({ maxConnections: 12 });
  proxy = database.proxy;
  t = await startTestApp(
    {
      DATABASE_URL: database.appUrl,
      DB_POOL_SIZE: '4',
      READY_DB_TIMEOUT_MS: '500',
      // Long enough for the boot's first connect on a runner busy with other suites' processes
      // (500 ms failed the boot beside cluster.e2e); refused connects fail at once regardless.
      DB_CONNECT_TIMEOUT_MS: '3000',
      // Should a circuit breaker guard the database, let it probe again soon after the outage.
      DATABASE_BREAKER_COOLDOWN_MS: '1000',
      // A stalled loop on a busy runner must not turn the answers under test into 'overloaded'.
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    },
    { freshDatabase: false },
  );
}, 60_000);

afterAll(async () => {
  const steps: (() => Promise<void> | undefined)[] = [() => t?.close(), () => database?.close()];
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw errors[0];
}, 60_000);

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${app().url}${path}`, {
    method,
    // Writes as an admin: what is tested is the outage, not access control.
    headers: {
      ...(method === 'GET' ? {} : bearer(ADMIN)),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text === '' ? {} : JSON.parse(text)) as Record<string, any>,
  };
}

/** Calls until `done` holds, for at most `withinMs`; returns the last answer either way. */
async function pollUntil(path: string, done: (a: Answer) => boolean, withinMs: number): Promise<Answer> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const answer = await call('GET', path);
    if (done(answer) || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let seq = 0;
const newUser = () => {
  seq++;
  return { name: `Ready ${String(seq)}`, email: `ready-${String(seq)}-${String(Date.now())}@example.org` };
};

/**
 * POST /users, asked again while it answers 503: a busy runner can miss a connection now
 * and then, and right after an outage the pool may still hand out a connection that broke.
 */
async function createUser(withinMs = 15_000): Promise<Answer> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const created = await call('POST', '/users', newUser());
    if (created.status !== 503 || Date.now() > deadline) return created;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a database stop and start flips /ready to 503 and back without restarting the service', () => {
  let existingId: number;

  it('is ready while the database answers', async () => {
    const created = await createUser();
    expect(created.status).toBe(201);
    existingId = created.body['id'] as number;

    // Polled only so that a stalled runner cannot fail it with a 500 ms ping timeout.
    const ready = await pollUntil('/ready', (a) => a.status === 200, 10_000);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      details: { database: { status: 'up' }, lifecycle: { status: 'up' } },
    });
  });

  it('answers /ready 503 in Terminus format once the database is gone, while /health stays 200', async () => {
    await proxy!.cut();

    const ready = await pollUntil('/ready', (a) => a.status === 503, 10_000);
    expect(ready.status).toBe(503);
    // Terminus's own shape, not a problem document.
    expect(ready.headers.get('content-type')).toMatch(/^application\/json/);
    expect(ready.body).not.toHaveProperty('type');
    expect(ready.body).not.toHaveProperty('code');
    expect(ready.body).toMatchObject({
      status: 'error',
      error: { database: { status: 'down' } },
      info: { lifecycle: { status: 'up' } },
    });
    expect(['unreachable', 'timeout']).toContain(ready.body['error']['database']['reason']);
    expect(ready.headers.get('cache-control')).toBe('no-store');

    const health = await call('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok' });

    // Still down on a second look, and liveness still unaffected.
    expect((await call('GET', '/ready')).status).toBe(503);
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('answers database_unavailable problems with Retry-After during the outage, never 500', async () => {
    const attempts: [string, string, unknown][] = [
      ['GET', '/users/1', undefined],
      ['GET', `/users/${String(existingId)}`, undefined],
      ['GET', '/users?limit=5', undefined],
      ['POST', '/users', newUser()],
      ['GET', '/users/1', undefined],
      // A profile needs its user row: no database, no profile (upstreams aside).
      ['GET', `/profiles/${String(existingId)}`, undefined],
    ];
    for (const [method, path, body] of attempts) {
      const res = await call(method, path, body);
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 503 });
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({
        type: '/problems/database_unavailable',
        status: 503,
        code: 'database_unavailable',
        instance: path.split('?')[0],
      });
      expect(typeof res.body['title']).toBe('string');
      expect(res.body['requestId']).toBe(res.headers.get('x-request-id'));
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      // Nothing about the connection leaks out.
      expect(JSON.stringify(res.body)).not.toMatch(/ECONN|127\.0\.0\.1|postgres:/);
    }
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('is ready again once the database is back, and serves writes without a restart', async () => {
    await proxy!.restore();

    const ready = await pollUntil('/ready', (a) => a.status === 200, 15_000);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ok', details: { database: { status: 'up' } } });

    const created = await createUser();
    expect(created.status).toBe(201);

    const before = await call('GET', `/users/${String(existingId)}`);
    expect(before.status).toBe(200);
    expect((await call('GET', `/users/${String(created.body['id'])}`)).status).toBe(200);
  });
});
