import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { ChatClient } from '../support/chat-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { bearer, ADMIN } from '../support/tokens.js';

/**
 * The inputs a new user tried that used to answer 500 or be stored changed:
 * each is now the field's 400 problem (or a client error frame in chat), and
 * nothing of a refused request reaches the database. Runs on the embedded
 * database, and on the real PostgreSQL when DATABASE_URL is set.
 */
describe('hostile text and ids are refused, and nothing refused is stored', () => {
  let t: TestApp;
  let rows: () => Promise<Record<string, number>>;

  beforeAll(async () => {
    t = await startTestApp({ CHAT_RATE_PER_SEC: '1000', CHAT_RATE_BURST: '1000' });
    const db = t.app.get(DataSource);
    rows = async () => {
      const [r] = await db.query<[Record<string, number>]>(
        `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM notifications)::int AS notifications,
                (SELECT count(*) FROM chat_messages)::int AS chat`,
      );
      return r;
    };
  });
  afterAll(async () => {
    await t.close();
  });

  // Writes carry the admin token: what is tested is the input's handling, not the credential check before it.
  const send = async (method: string, path: string, body?: string) => {
    const auth = method === 'GET' ? {} : bearer(ADMIN);
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: body === undefined ? auth : { 'content-type': 'application/json', ...auth },
      ...(body === undefined ? {} : { body }),
    });
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      body: (await res.json()) as Record<string, unknown>,
    };
  };

  // Raw JSON text, so the escapes reach the server exactly as written.
  const user = (name: string) => `{"name":"${name}","email":"someone@example.org"}`;
  const mail = (subject: string, body: string) =>
    `{"channel":"email","to":"someone@example.org","subject":"${subject}","body":"${body}"}`;

  it.each([
    ['a NUL in a user name', 'POST', '/users', user('Ada\\u0000Lovelace'), 'name', 'must not contain NUL characters'],
    ['an unpaired surrogate in a user name', 'POST', '/users', user('Ada\\ud800'), 'name', 'unpaired surrogate'],
    ['a line break in a user name', 'POST', '/users', user('Ada\\nLovelace'), 'name', 'single line'],
    ['an escape code in a user name', 'POST', '/users', user('\\u001b[2J'), 'name', 'control characters'],
    ['a NUL in a mail subject', 'POST', '/notifications', mail('Hi\\u0000', 'text'), 'subject', 'NUL'],
    [
      'a CR LF in a mail subject',
      'POST',
      '/notifications',
      mail('Hi\\r\\nBcc: x@evil.example', 'text'),
      'subject',
      'single line',
    ],
    ['a NUL in a mail body', 'POST', '/notifications', mail('Hi', 'one\\u0000two'), 'body', 'NUL'],
    [
      'a lone low surrogate in a mail body',
      'POST',
      '/notifications',
      mail('Hi', '\\udc00'),
      'body',
      'unpaired surrogate',
    ],
    ['a NUL in a query string', 'GET', '/users?cursor=%00', undefined, 'cursor', 'NUL'],
  ])('%s is a 400 naming the field', async (_label, method, path, body, field, message) => {
    const before = await rows();
    const res = await send(method, path, body);
    expect(res.status).toBe(400);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'validation_failed', errors: [{ field }] });
    expect(JSON.stringify(res.body['errors'])).toContain(message);
    expect(await rows()).toEqual(before);
  });

  describe('ids', () => {
    beforeAll(async () => {
      // Users 1..16 exist, so a lenient parse of 0x10, 1e3 or +1 would answer 200 or 404.
      for (let i = 1; i <= 16; i++) {
        await send('POST', '/users', `{"name":"User ${String(i)}","email":"user${String(i)}@example.org"}`);
      }
    });

    it.each(['0x10', '1e3', '+1', '-1', '0', '01', '1.0', '2147483648', '%201', '%00'])(
      'path id %j is a 400 naming the parameter, never parsed as a number',
      async (id) => {
        for (const [path, field] of [
          [`/users/${id}`, 'id'],
          [`/profiles/${id}`, 'userId'],
        ] as const) {
          const res = await send('GET', path);
          expect(res.status).toBe(400);
          expect(res.body).toMatchObject({ code: 'validation_failed', errors: [{ field }] });
        }
        expect((await send('PATCH', `/users/${id}`, '{"name":"Changed"}')).status).toBe(400);
        expect((await send('DELETE', `/users/${id}`)).status).toBe(400);
      },
    );
  });

  it.each(['0x10', '1e3', '+5', '05', ' 5', ''])('query integer limit=%j is a 400', async (limit) => {
    const res = await send('GET', `/users?limit=${encodeURIComponent(limit)}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      errors: expect.arrayContaining([{ field: 'limit', message: 'limit must be an integer' }]),
    });
  });

  it('a 5,000-digit id is a 414 problem document', async () => {
    const res = await send('GET', `/users/${'9'.repeat(5000)}`);
    expect(res.status).toBe(414);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'uri_too_long', status: 414 });
  });

  it('keeps what the rule allows: tabs and line breaks in a mail body, emoji in a name', async () => {
    const created = await send('POST', '/users', user('Zoë \\ud83d\\ude00'));
    expect(created.status).toBe(201);
    expect(created.body['name']).toBe('Zoë \u{1f600}');
    expect((await send('POST', '/notifications', mail('Hello', 'line one\\r\\n\\tline two'))).status).toBe(202);
  });

  it('chat answers invalid_text for NUL, unpaired surrogates and escape codes, stores nothing, and stays open', async () => {
    const client = await ChatClient.as(t, 'Tester');
    try {
      await client.join('hardening');
      const before = await rows();
      for (const text of ['a\\u0000b', '\\ud800', 'x\\udfff', '\\u001b[31mred']) {
        client.send(`{"type":"message","room":"hardening","text":"${text}"}`);
        const error = await client.nextOf('error');
        expect(error).toMatchObject({ code: 'invalid_text' });
      }
      expect(await rows()).toEqual(before);
      client.send({ type: 'message', room: 'hardening', text: 'still here\n' });
      expect(await client.nextOf('message')).toMatchObject({ text: 'still here\n', author: 'Tester' });
    } finally {
      client.close();
    }
  });
});
