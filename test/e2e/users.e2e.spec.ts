import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer, mintToken } from '../support/tokens.js';

let t: TestApp;

beforeAll(async () => {
  // Debug level: the request-id test reads the service's 'user created' line.
  t = await startTestApp({ LOG_LEVEL: 'debug' });
});
afterAll(async () => {
  await t.close();
});

/** Writes carry the admin token unless told otherwise (`null`: anonymous); reads go anonymous. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  token: string | null = method === 'GET' ? null : ADMIN,
) {
  const auth = token === null ? {} : bearer(token);
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: body === undefined ? { ...auth, ...headers } : { 'content-type': 'application/json', ...auth, ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const json: unknown = text === '' ? undefined : JSON.parse(text);
  return { status: res.status, headers: res.headers, body: json as Record<string, any> };
}

function expectProblem(res: Awaited<ReturnType<typeof call>>, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, type: `/problems/${code}` });
  expect(typeof res.body['title']).toBe('string');
  expect(res.body['requestId']).toBe(res.headers.get('x-request-id'));
}

describe('users API', () => {
  it('creates, reads, updates and deletes a user', async () => {
    const created = await call('POST', '/users', { name: '  Ada Lovelace ', email: 'ada@example.org' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.org' });
    const id = created.body['id'] as number;
    expect(Number.isInteger(id)).toBe(true);

    const read = await call('GET', `/users/${String(id)}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);

    const patched = await call('PATCH', `/users/${String(id)}`, { name: 'Ada King' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, name: 'Ada King', email: 'ada@example.org' });
    expect(Date.parse(patched.body['updatedAt'] as string)).toBeGreaterThanOrEqual(
      Date.parse(created.body['updatedAt'] as string),
    );

    const deleted = await call('DELETE', `/users/${String(id)}`);
    expect(deleted.status).toBe(204);
    expectProblem(await call('GET', `/users/${String(id)}`), 404, 'user_not_found');
    expectProblem(await call('DELETE', `/users/${String(id)}`), 404, 'user_not_found');
    expectProblem(await call('PATCH', `/users/${String(id)}`, { name: 'x' }), 404, 'user_not_found');
  });

  it('rejects a duplicate email regardless of case with 409', async () => {
    expect((await call('POST', '/users', { name: 'Grace', email: 'grace@example.org' })).status).toBe(201);
    const dup = await call('POST', '/users', { name: 'Other Grace', email: 'GRACE@Example.org' });
    expectProblem(dup, 409, 'email_taken');
    expect(dup.body['errors']).toEqual([{ field: 'email', message: 'email is already in use' }]);

    const other = await call('POST', '/users', { name: 'Alan', email: 'alan@example.org' });
    const clash = await call('PATCH', `/users/${String(other.body['id'])}`, { email: 'Grace@example.org' });
    expectProblem(clash, 409, 'email_taken');
  });

  it('pages through users with an opaque cursor in a stable order', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await call('POST', '/users', { name: `Pager ${String(i)}`, email: `pager${String(i)}@example.org` });
      ids.push(res.body['id'] as number);
    }
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${encodeURIComponent(cursor)}`;
      const page = await call('GET', `/users${query}`);
      expect(page.status).toBe(200);
      const items = page.body['items'] as { id: number }[];
      expect(items.length).toBeLessThanOrEqual(3);
      seen.push(...items.map((u) => u.id));
      cursor = page.body['nextCursor'] as string | null;
      pages++;
    } while (cursor !== null && pages < 50);
    expect(cursor).toBeNull();
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) expect(seen).toContain(id);

    const defaultPage = await call('GET', '/users');
    expect((defaultPage.body['items'] as unknown[]).length).toBeLessThanOrEqual(20);
  });

  it('writes need a token: anonymous is 401 before the body is read, a token without the scope 403', async () => {
    const anonymous = await call('POST', '/users', { name: 'Anon', email: 'anon@example.org' }, {}, null);
    expectProblem(anonymous, 401, 'invalid_token');
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    // Even a body that would be a 400 (or a 413): the credential is checked first.
    expectProblem(await call('POST', '/users', '{"name": ', {}, null), 401, 'invalid_token');
    expectProblem(await call('PATCH', '/users/1', { name: 'x' }, {}, null), 401, 'invalid_token');
    expectProblem(await call('DELETE', '/users/1', undefined, {}, null), 401, 'invalid_token');

    const reader = await mintToken({ sub: 'reader' });
    const refused = await call('POST', '/users', { name: 'Reader', email: 'reader@example.org' }, {}, reader);
    expectProblem(refused, 403, 'insufficient_scope');
    expect(refused.headers.get('www-authenticate')).toContain('scope="users:write"');
    const writer = await mintToken({ sub: 'writer', scope: 'users:write' });
    const created = await call('POST', '/users', { name: 'Writer', email: 'writer@example.org' }, {}, writer);
    expect(created.status).toBe(201);
    const id = String(created.body['id']);

    // PATCH and DELETE: the user whose id is the token's sub, or an admin; nobody else.
    expectProblem(await call('PATCH', `/users/${id}`, { name: 'Other' }, {}, writer), 403, 'insufficient_scope');
    const self = await mintToken({ sub: id });
    const renamed = await call('PATCH', `/users/${id}`, { name: 'Myself' }, {}, self);
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Myself' });
    expect((await call('DELETE', `/users/${id}`, undefined, {}, self)).status).toBe(204);
  });

  describe('bad input gets a 400 problem document naming the field', () => {
    const cases: [string, string, string, unknown, string][] = [
      ['missing email', 'POST', '/users', { name: 'x' }, 'email'],
      ['missing name', 'POST', '/users', { email: 'x@example.org' }, 'name'],
      ['invalid email', 'POST', '/users', { name: 'x', email: 'not-an-email' }, 'email'],
      ['name too long', 'POST', '/users', { name: 'x'.repeat(101), email: 'long@example.org' }, 'name'],
      ['empty name', 'POST', '/users', { name: '   ', email: 'blank@example.org' }, 'name'],
      ['email too long', 'POST', '/users', { name: 'x', email: `${'a'.repeat(250)}@example.org` }, 'email'],
      ['wrong type', 'POST', '/users', { name: 42, email: 'num@example.org' }, 'name'],
      ['unknown field', 'POST', '/users', { name: 'x', email: 'u@example.org', admin: true }, 'admin'],
      ['unknown field on patch', 'PATCH', '/users/1', { nickname: 'x' }, 'nickname'],
      ['empty patch', 'PATCH', '/users/1', {}, 'body'],
      ['array body', 'POST', '/users', [], 'body'],
      ['non-numeric id', 'GET', '/users/abc', undefined, 'id'],
      ['zero id', 'GET', '/users/0', undefined, 'id'],
      ['huge id', 'GET', '/users/99999999999', undefined, 'id'],
      ['limit too big', 'GET', '/users?limit=101', undefined, 'limit'],
      ['limit zero', 'GET', '/users?limit=0', undefined, 'limit'],
      ['limit not a number', 'GET', '/users?limit=ten', undefined, 'limit'],
      ['unknown query parameter', 'GET', '/users?sort=name', undefined, 'sort'],
    ];
    it.each(cases)('%s', async (_name, method, path, body, field) => {
      const res = await call(method, path, body);
      expectProblem(res, 400, 'validation_failed');
      const fields = (res.body['errors'] as { field: string }[]).map((e) => e.field);
      expect(fields).toContain(field);
    });

    it('a cursor that does not parse', async () => {
      for (const cursor of ['garbage!', 'Zm9v', Buffer.from('u1:-5').toString('base64url'), 'a'.repeat(200)]) {
        const res = await call('GET', `/users?cursor=${encodeURIComponent(cursor)}`);
        expect(res.status).toBe(400);
        expect(['invalid_cursor', 'validation_failed']).toContain(res.body['code']);
      }
    });

    it('malformed JSON', async () => {
      expectProblem(await call('POST', '/users', '{"name": "x", '), 400, 'invalid_json');
    });

    it('wrong content type', async () => {
      const res = await call('POST', '/users', 'name=x', { 'content-type': 'text/xml' });
      expectProblem(res, 415, 'unsupported_media_type');
    });

    it('a body over BODY_LIMIT_BYTES gets 413', async () => {
      const res = await call('POST', '/users', { name: 'x', email: 'big@example.org', pad: 'x'.repeat(1_100_000) });
      expectProblem(res, 413, 'payload_too_large');
    });

    it('an unknown route gets a 404 problem', async () => {
      expectProblem(await call('GET', '/nope'), 404, 'not_found');
    });
  });
});

describe('cross-cutting HTTP behaviour', () => {
  it('echoes a safe X-Request-Id and generates one otherwise', async () => {
    const given = await call('GET', '/users?limit=1', undefined, { 'x-request-id': 'trace-abc.123' });
    expect(given.headers.get('x-request-id')).toBe('trace-abc.123');
    const unsafe = await call('GET', '/users?limit=1', undefined, { 'x-request-id': 'bad id\twith spaces' });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const none = await call('GET', '/health');
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sends security headers and no banner, on answers and on errors alike', async () => {
    for (const path of ['/health', '/users/999999999', '/users/nope', '/openapi.json']) {
      const res = await call('GET', path);
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('server')).toBeNull();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self' 'unsafe-inline'");
      expect(res.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    }
  });

  it('stamps the request id on log lines written while serving the request', async () => {
    // The service logs 'user created' after the body was parsed and the insert awaited:
    // the request id must survive both async hops.
    const res = await call(
      'POST',
      '/users',
      { name: 'Logged', email: 'logged@example.org' },
      { 'x-request-id': 'log-trace-2' },
    );
    const line = t.logs.find((l) => l['msg'] === 'user created' && l['userId'] === res.body['id']);
    expect(line).toMatchObject({ reqId: 'log-trace-2', context: 'UsersService' });
    const other = t.logs.filter((l) => l['msg'] === 'user created' && l['userId'] !== res.body['id']);
    expect(other.every((l) => l['reqId'] !== 'log-trace-2')).toBe(true);
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const doc = await call('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    const paths = doc.body['paths'] as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/users', '/users/{id}', '/health', '/ready']));
    expect(Object.keys(paths['/users']?.['post']?.responses ?? {})).toEqual(
      expect.arrayContaining(['201', '400', '409']),
    );
    const schemas = (doc.body['components'] as { schemas: Record<string, unknown> }).schemas;
    expect(Object.keys(schemas)).toEqual(expect.arrayContaining(['CreateUserDto', 'UserDto', 'ProblemDto']));
    const ui = await fetch(`${t.url}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });
});
