import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The local issuer from the outside: `npm run -s token` prints a token alone
 * on stdout, signed by the key the service creates in AUTH_KEYS_DIR on first
 * start, and the service accepts it.
 */

const run = promisify(execFile);
let keysDir: string;

const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['dist/auth/token.cli.js', ...args], {
    env: { PATH: process.env['PATH'] ?? '', AUTH_KEYS_DIR: keysDir, ...env },
  });

const failure = async (promise: Promise<unknown>): Promise<{ code: number; stderr: string }> => {
  try {
    await promise;
  } catch (error) {
    const { code, stderr } = error as { code: number; stderr: string };
    return { code, stderr };
  }
  throw new Error('expected the command to fail');
};

beforeAll(() => {
  keysDir = mkdtempSync(join(tmpdir(), 'token-cli-'));
});

afterAll(() => {
  rmSync(keysDir, { recursive: true, force: true });
});

describe('npm run token', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ AUTH_KEYS_DIR: join(keysDir, 'shared') });
  });
  afterAll(async () => {
    await t.close();
  });

  it('prints one token with the asked claims, which the service accepts', async () => {
    // `npm run token` builds first and then runs exactly this; the suite does not rebuild dist/ under other suites.
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['token']).toMatch(/&& node dist\/auth\/token\.cli\.js$/);
    const { stdout, stderr } = await cli(
      ['--sub', '7', '--name', 'Grace Hopper', '--scope', 'users:write chat:write'],
      { AUTH_KEYS_DIR: join(keysDir, 'shared') },
    );
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(stderr).toBe('');
    const token = stdout.trim();
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: '7',
      name: 'Grace Hopper',
      scope: 'users:write chat:write',
      iss: 'nest-async-api',
      aud: 'nest-async-api',
    });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);
    const res = await fetch(`${t.url}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Grace', email: 'grace@example.org' }),
    });
    expect(res.status).toBe(201);
    const jwks = (await (await fetch(`${t.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toEqual([expect.objectContaining({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })]);
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(jwks.keys[0]?.['kid']).toBe(decodeProtectedHeader(token).kid);
  });
});

describe('the local key pair', () => {
  it('is created once, private to its owner, and shared by instances that start together', async () => {
    const dir = join(keysDir, 'race');
    const tokens = await Promise.all(Array.from({ length: 6 }, () => cli(['--sub', 'racer'])));
    const kids = new Set(tokens.map(({ stdout }) => decodeProtectedHeader(stdout.trim()).kid));
    expect(kids.size).toBe(1);
    // cli() uses keysDir itself; the same holds for any folder.
    await Promise.all(Array.from({ length: 4 }, () => cli(['--sub', 'racer'], { AUTH_KEYS_DIR: dir })));
    expect(readdirSync(dir)).toEqual(['signing-key.jwk.json']);
    expect(statSync(join(dir, 'signing-key.jwk.json')).mode & 0o777).toBe(0o600);
  });

  it('honours --ttl and refuses bad arguments with exit code 2', async () => {
    const { stdout } = await cli(['--sub', 'short', '--ttl', '90s']);
    const claims = decodeJwt(stdout.trim());
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(90);
    for (const args of [
      [],
      ['--sub', 'x', '--scope', 'root'],
      ['--sub', 'x', '--ttl', '1y'],
      ['--sub', 'x', '--bogus'],
    ]) {
      const { code, stderr } = await failure(cli(args));
      expect(code).toBe(2);
      expect(stderr).toMatch(/usage: npm run -s token/);
    }
  });

  it('refuses to issue while AUTH_JWKS_URL names a provider', async () => {
    const { code, stderr } = await failure(
      cli(['--sub', 'x'], { AUTH_JWKS_URL: 'https://idp.example/jwks', AUTH_ISSUER: 'https://idp.example' }),
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/AUTH_JWKS_URL is set/);
  });
});
