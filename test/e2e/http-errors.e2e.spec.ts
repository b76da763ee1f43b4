import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect } from 'node:net';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer } from '../support/tokens.js';

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
}

/** Writes raw bytes on a fresh socket (so malformed HTTP reaches the server as sent) and parses the one answer. */
function exchange(url: string, request: string | Buffer): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => socket.end(request));
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      try {
        resolve({
          status: Number(statusLine.split(' ')[1]),
          headers,
          body: JSON.parse(rest.join('\r\n\r\n')) as Record<string, unknown>,
        });
      } catch {
        reject(new Error(`answer is not one JSON document: ${JSON.stringify(text.slice(0, 500))}`));
      }
    });
  });
}

// Writes carry the admin token, so what is tested is the body's handling, not the credential check before it.
const post = (path: string, headers: string, body = '', authorization = `Bearer ${ADMIN}`): string =>
  `POST ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${authorization === '' ? '' : `Authorization: ${authorization}\r\n`}${headers}\r\n\r\n${body}`;
const get = (path: string, headers = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${headers}${headers === '' ? '' : '\r\n'}\r\n`;

/**
 * Every error that Fastify or Node's HTTP parser raises before a handler runs,
 * each answered as an RFC 9457 problem document with the right status.
 */
describe('errors raised by the HTTP layer itself are problem documents', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ BODY_LIMIT_BYTES: '1024' });
    // The first use of a token is verified asynchronously; later ones come from the cache, synchronously.
    // These requests half-close their socket right after sending, and Node drops a half-closed connection
    // whose answer is not under way yet, so the token is verified once before.
    expect((await fetch(`${t.url}/users?limit=1`, { headers: bearer(ADMIN) })).status).toBe(200);
  });
  afterAll(async () => {
    await t.close();
  });

  it.each<[string, string | Buffer, number, string]>([
    [
      'malformed JSON',
      post('/users', 'Content-Type: application/json\r\nContent-Length: 8', '{"name":'),
      400,
      'invalid_json',
    ],
    ['an empty JSON body', post('/users', 'Content-Type: application/json\r\nContent-Length: 0'), 400, 'invalid_json'],
    [
      'an unsupported media type',
      post('/users', 'Content-Type: text/plain\r\nContent-Length: 2', 'hi'),
      415,
      'unsupported_media_type',
    ],
    [
      'a body over the limit',
      post('/users', 'Content-Type: application/json\r\nContent-Length: 2048', 'x'.repeat(2048)),
      413,
      'payload_too_large',
    ],
    [
      'a Content-Length that does not match the body',
      post('/users', 'Content-Type: application/json\r\nContent-Length: 10', '{}'),
      400,
      'bad_request',
    ],
    ['a path parameter over 100 characters', get(`/users/${'1'.repeat(5000)}`), 414, 'uri_too_long'],
    ['a request line over the header limit', get(`/users?cursor=${'a'.repeat(20_000)}`), 414, 'uri_too_long'],
    ['headers over the header limit', get('/users', `X-Big: ${'a'.repeat(20_000)}`), 431, 'header_too_large'],
    ['bad percent-encoding in the path', get('/users/%zz'), 400, 'bad_request'],
    ['malformed HTTP', 'GARBAGE\r\n\r\n', 400, 'bad_request'],
    ['an HTTP/1.1 request without Host', 'GET /users HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'bad_request'],
    ['a NUL byte in a header', get('/users', 'X-Odd: a\u0000b'), 400, 'bad_request'],
    [
      'both Content-Length and chunked',
      post('/users', 'Content-Length: 2\r\nTransfer-Encoding: chunked', '{}'),
      400,
      'bad_request',
    ],
    [
      'a proto-poisoning body',
      post(
        '/users',
        'Content-Type: application/json\r\nContent-Length: 27',
        '{"__proto__":{"admin":true}}'.slice(0, 27),
      ),
      400,
      'invalid_json',
    ],
    ['an unknown path', get('/no-such-thing'), 404, 'not_found'],
    [
      'an anonymous write, refused before its malformed body is read',
      post('/users', 'Content-Type: application/json\r\nContent-Length: 8', '{"name":', ''),
      401,
      'invalid_token',
    ],
    [
      'a credential that is not a bearer token',
      post('/users', 'Content-Type: application/json\r\nContent-Length: 2', '{}', 'Basic dXNlcjpwYXNz'),
      401,
      'invalid_token',
    ],
  ])('%s', async (_label, request, status, code) => {
    const answer = await exchange(t.url, request);
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({ type: `/problems/${code}`, status, code });
    expect(typeof answer.body['title']).toBe('string');
    // Nothing of the input is echoed back at length.
    expect(JSON.stringify(answer.body).length).toBeLessThan(6000);
  });

  it.each([
    ['PUT', '/users', 'GET, HEAD, POST'],
    ['POST', '/users/1', 'GET, HEAD, PATCH, DELETE'],
    ['DELETE', '/health', 'GET, HEAD'],
    ['GET', '/process-data', 'POST'],
    ['PATCH', '/notifications', 'POST'],
  ])('%s %s on a known path is 405 with Allow: %s', async (method, path, allow) => {
    const res = await fetch(`${t.url}${path}`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'method_not_allowed', status: 405 });
  });

  it('answers a missing file under a wildcard route with 404, not 405', async () => {
    const res = await fetch(`${t.url}/docs/no-such-file.js`);
    expect(res.status).toBe(404);
    expect(res.headers.get('allow')).toBeNull();
    expect(await res.json()).toMatchObject({ code: 'not_found' });
  });

  it('serves the next connection normally after each of them', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });
});
