import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect } from 'node:net';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { mintToken } from '../support/tokens.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Writes a raw upgrade request and reads until the server closes (or the head of a 101). */
async function upgrade(requestLine: string, headers: Record<string, string>): Promise<string> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ port: Number(port), host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer; got ${JSON.stringify(text)}`));
    }, 3000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.startsWith('HTTP/1.1 101') && text.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
    socket.write(`${requestLine}\r\n${head.join('')}\r\n`);
  });
}

const base = { Host: '127.0.0.1', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' };

function problem(text: string): { status: number; headers: string; body: Record<string, unknown> } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: JSON.parse(body) };
}

describe('WebSocket upgrades that are refused get problem documents', () => {
  it('a bad handshake at /ws: 400 (or 405 for another method), application/problem+json', async () => {
    const version = problem(
      await upgrade('GET /ws HTTP/1.1', { ...base, 'Sec-WebSocket-Version': '99', 'Sec-WebSocket-Key': KEY }),
    );
    expect(version.status).toBe(400);
    expect(version.headers).toContain('content-type: application/problem+json');
    expect(version.headers).toContain('sec-websocket-version: 13, 8');
    expect(version.body).toMatchObject({ status: 400, code: 'bad_request', instance: '/ws' });

    const key = problem(await upgrade('GET /ws HTTP/1.1', base));
    expect(key.body).toMatchObject({ status: 400, detail: 'Missing or invalid Sec-WebSocket-Key header' });

    const method = problem(await upgrade('POST /ws HTTP/1.1', { ...base, 'Sec-WebSocket-Key': KEY }));
    expect(method.status).toBe(405);
    expect(method.headers).toContain('allow: get');
    expect(method.body).toMatchObject({ status: 405, code: 'method_not_allowed' });
  });

  it('an upgrade to a path without a WebSocket endpoint is a 404, not a dropped connection', async () => {
    const answer = problem(await upgrade('GET /users HTTP/1.1', { ...base, 'Sec-WebSocket-Key': KEY }));
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ status: 404, code: 'not_found', instance: '/users' });
  });

  it('a bad token is a 401 with WWW-Authenticate before the upgrade; a good one upgrades', async () => {
    const handshake = { ...base, 'Sec-WebSocket-Key': KEY };
    for (const answer of [
      problem(await upgrade('GET /ws HTTP/1.1', { ...handshake, Authorization: 'Bearer not.a.jwt' })),
      problem(await upgrade('GET /ws?access_token=not.a.jwt HTTP/1.1', handshake)),
    ]) {
      expect(answer.status).toBe(401);
      expect(answer.headers).toContain('content-type: application/problem+json');
      expect(answer.headers).toMatch(/www-authenticate: bearer .*error="invalid_token"/);
      expect(answer.body).toMatchObject({ status: 401, code: 'invalid_token', instance: '/ws' });
    }
    const token = await mintToken({ sub: 'raw', scope: 'chat:write' });
    expect(await upgrade('GET /ws HTTP/1.1', { ...handshake, Authorization: `Bearer ${token}` })).toMatch(
      /^HTTP\/1\.1 101 /,
    );
    expect(await upgrade(`GET /ws?access_token=${token} HTTP/1.1`, handshake)).toMatch(/^HTTP\/1\.1 101 /);
  });

  it('still upgrades a good handshake, whatever the Host header says', async () => {
    expect(await upgrade('GET /ws HTTP/1.1', { ...base, 'Sec-WebSocket-Key': KEY })).toMatch(/^HTTP\/1\.1 101 /);
    expect(await upgrade('GET /ws?x=1 HTTP/1.1', { ...base, Host: '[', 'Sec-WebSocket-Key': KEY })).toMatch(
      /^HTTP\/1\.1 101 /,
    );
  });
});
