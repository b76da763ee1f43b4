import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../src/config/load-config.js';
import { startJwksServer, type JwksServer } from '../support/jwks-server.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { bearer, mintToken } from '../support/tokens.js';

/**
 * Tokens from an identity provider: a separate process publishes a JSON Web
 * Key Set and signs tokens (as Keycloak or Auth0 would); the app, started
 * with AUTH_JWKS_URL, verifies them against that set over real HTTP.
 */

const ISSUER = 'https://idp.example.test/realms/main';
const AUDIENCE = 'orders-api';
const COOLDOWN_MS = 1500;

let idp: JwksServer;
let t: TestApp;

const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'idp-user',
  name: 'Idp User',
  scope: 'users:write',
  iss: ISSUER,
  aud: [AUDIENCE, 'account'],
  ...extra,
});

let emails = 0;
const createUser = async (token: string, base = t.url) =>
  fetch(`${base}/users`, {
    method: 'POST',
    headers: { ...bearer(token), 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'From the provider', email: `idp-${String(++emails)}@example.org` }),
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  idp = await startJwksServer();
  t = await startTestApp({
    AUTH_JWKS_URL: idp.jwksUrl,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    AUTH_JWKS_COOLDOWN_MS: String(COOLDOWN_MS),
  });
}, 60_000);

afterAll(async () => {
  await t.close();
  await idp.stop();
});

describe('tokens verified against a provider key set', () => {
  it("accepts the provider's token and checks issuer and audience", async () => {
    expect((await createUser(await idp.sign(claims()))).status).toBe(201);
    expect((await createUser(await idp.sign(claims({ iss: 'https://other.example' })))).status).toBe(401);
    expect((await createUser(await idp.sign(claims({ aud: 'nest-async-api' })))).status).toBe(401);
  });

  it('does not publish a key set of its own, and refuses tokens of the local issuer', async () => {
    expect((await fetch(`${t.url}/.well-known/jwks.json`)).status).toBe(404);
    const local = await mintToken({ sub: 'local', scope: 'users:write' });
    expect((await createUser(local)).status).toBe(401);
  });

  it('follows a key rotation: a token with a new kid triggers one refetch, old keys keep working', async () => {
    const before = await idp.fetches();
    const kid = await idp.rotate();
    const token = await idp.sign(claims());
    expect(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8'))).toMatchObject({ kid });
    // Past the cooldown of the previous fetch, so the unknown kid may refetch.
    await sleep(COOLDOWN_MS + 100);
    expect((await createUser(token)).status).toBe(201);
    expect(await idp.fetches()).toBe(before + 1);
    // Cached now: more requests with the new key cost no fetch.
    for (let i = 0; i < 5; i++) expect((await createUser(await idp.sign(claims()))).status).toBe(201);
    expect((await createUser(await idp.sign(claims(), 'previous'))).status).toBe(201);
    expect(await idp.fetches()).toBe(before + 1);
  });

  it('lets a flood of unknown kids cost at most one fetch per cooldown', async () => {
    await sleep(COOLDOWN_MS + 100);
    const before = await idp.fetches();
    const answers = await Promise.all(
      Array.from(
        { length: 40 },
        async (_, i) => (await createUser(await idp.sign(claims({ sub: `flood-${String(i)}` }), 'unpublished'))).status,
      ),
    );
    expect(new Set(answers)).toEqual(new Set([401]));
    expect(await idp.fetches()).toBeLessThanOrEqual(before + 1);
    // Still inside the cooldown: nothing more is fetched.
    for (let i = 0; i < 10; i++) {
      expect((await createUser(await idp.sign(claims(), 'unpublished'))).status).toBe(401);
    }
    expect(await idp.fetches()).toBeLessThanOrEqual(before + 1);
  });

  it('keeps verifying known keys while the provider is down, and answers 503 (not 401) for keys it cannot fetch', async () => {
    await idp.fail(true);
    try {
      await sleep(COOLDOWN_MS + 100);
      const known = await idp.sign(claims());
      expect((await createUser(known)).status).toBe(201);
      const kid = await idp.rotate();
      expect(kid).toBeTruthy();
      const unfetchable = await idp.sign(claims({ sub: 'rotated-while-down' }));
      const res = await createUser(unfetchable);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { code: string }).code).toBe('dependency_unavailable');
      expect(res.headers.get('retry-after')).toBeTruthy();
      // A failed fetch pauses fetching for the cooldown: a burst costs the provider nothing more.
      const before = await idp.fetches();
      for (let i = 0; i < 10; i++) expect((await createUser(unfetchable)).status).toBe(503);
      expect(await idp.fetches()).toBe(before);
    } finally {
      await idp.fail(false);
    }
    await sleep(COOLDOWN_MS + 100);
    expect((await createUser(await idp.sign(claims()))).status).toBe(201);
  });

  it('refuses a token signed with a key the provider dropped, once the set is refetched', async () => {
    await sleep(COOLDOWN_MS + 100);
    await idp.rotate(true);
    // A token with the new kid makes the app refetch; the dropped key leaves its set.
    expect((await createUser(await idp.sign(claims()))).status).toBe(201);
    const signedWithDropped = await idp.sign(claims({ sub: 'after-drop' }), 'retired');
    expect((await createUser(signedWithDropped)).status).toBe(401);
  });

  it('turns guests off by default with a provider (CHAT_GUESTS follows AUTH_JWKS_URL)', () => {
    expect(t.config.chat.guests).toBe(false);
  });
});

describe('configuration', () => {
  it('refuses AUTH_JWKS_URL without AUTH_ISSUER at boot with a clear message', async () => {
    expect(() => parseConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks' })).toThrow(
      /AUTH_ISSUER is required with AUTH_JWKS_URL/,
    );
  });
});
