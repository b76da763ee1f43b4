import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { subscribe } from '../support/sse-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer, mintToken } from '../support/tokens.js';

/**
 * POST /notifications end to end: a real SMTP server (smtp-server) on a
 * loopback port, the real app, the outbox in the test database.
 */

let smtp: SmtpSink;
let t: TestApp;

const MAX_ATTEMPTS = 3;

/** The caller of most tests: may send, and may read what it sent. */
const SENDER = await mintToken({ sub: 'sender-1', scope: 'notifications:write' });
const OTHER = await mintToken({ sub: 'sender-2', scope: 'notifications:write' });

beforeAll(async () => {
  smtp = await startSmtpSink();
  t = await startTestApp({
    SMTP_URL: smtp.url,
    NOTIFY_POLL_INTERVAL_MS: '50',
    NOTIFY_CONCURRENCY: '4',
    SMTP_RETRY_BASE_DELAY_MS: '20',
    SMTP_RETRY_MAX_DELAY_MS: '50',
    SMTP_RETRY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    SMTP_TIMEOUT_MS: '10000',
  });
}, 60_000);

afterAll(async () => {
  await t.close();
  await smtp.close();
}, 30_000);

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: {
      ...bearer(SENDER),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const json: unknown = text === '' ? undefined : JSON.parse(text);
  return { status: res.status, headers: res.headers, body: json as Record<string, any> };
}

function expectProblem(res: Answer, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, type: `/problems/${code}` });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const mail = (subject: string, extra: Record<string, unknown> = {}) => ({
  channel: 'email',
  to: `someone-${randomUUID().slice(0, 8)}@example.org`,
  subject,
  body: `Hello from ${subject}`,
  ...extra,
});

/** Polls GET /notifications/:id until it reaches a final state (generous bound for a busy machine). */
async function settled(id: string, withinMs = 30_000): Promise<Record<string, any>> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const res = await call('GET', `/notifications/${id}`);
    expect(res.status).toBe(200);
    if (res.body['status'] === 'delivered' || res.body['status'] === 'failed') return res.body;
    if (Date.now() > deadline) throw new Error(`notification ${id} still ${String(res.body['status'])}`);
    await sleep(50);
  }
}

async function waitFor(check: () => boolean, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

const byMessageId = (id: string) => smtp.all.filter((m) => m.messageId === `<${id}@nest-async-api>`);

describe('notifications', () => {
  it('answers 202 once stored, then delivers through SMTP with a Message-ID from the id', async () => {
    const request = mail('Welcome aboard');
    const res = await call('POST', '/notifications', request);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.any(String), status: 'queued' });
    const id = res.body['id'] as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const final = await settled(id);
    expect(final).toMatchObject({ id, status: 'delivered', attempts: 1, lastError: null });
    expect(Date.parse(final['deliveredAt'] as string)).toBeGreaterThanOrEqual(Date.parse(final['createdAt'] as string));

    const received = byMessageId(id);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      accepted: true,
      recipients: [request.to],
      subject: 'Welcome aboard',
      body: 'Hello from Welcome aboard',
    });
  });

  it('replays the same key and body with the same id, once; another body under the key is 409', async () => {
    const key = `key-${randomUUID()}`;
    const request = mail('Idempotent hello');
    const first = await call('POST', '/notifications', request, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    const replays = await Promise.all(
      [1, 2, 3].map(() => call('POST', '/notifications', request, { 'idempotency-key': key })),
    );
    for (const replay of replays) {
      expect(replay.status).toBe(202);
      expect(replay.body).toEqual(first.body);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
    }
    const id = first.body['id'] as string;
    await settled(id);
    // A replay after delivery still answers the same and queues nothing.
    expect((await call('POST', '/notifications', request, { 'idempotency-key': key })).body).toEqual(first.body);

    const conflict = await call(
      'POST',
      '/notifications',
      { ...request, body: 'something else' },
      { 'idempotency-key': key },
    );
    expectProblem(conflict, 409, 'idempotency_conflict');

    await sleep(300);
    expect(byMessageId(id).filter((m) => m.accepted)).toHaveLength(1);
    expect(smtp.all.filter((m) => m.recipients.includes(request.to))).toHaveLength(1);
  });

  it('deduplicates concurrent first requests with one key', async () => {
    const key = `race-${randomUUID()}`;
    const request = mail('Racing');
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => call('POST', '/notifications', request, { 'idempotency-key': key })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(202));
    expect(new Set(answers.map((a) => a.body['id'])).size).toBe(1);
  });

  it.each([
    ['a wrong channel', { channel: 'sms' }, 'channel'],
    ['a bad address', { to: 'not-an-address' }, 'to'],
    ['a too long address', { to: `${'a'.repeat(250)}@example.org` }, 'to'],
    ['an empty subject', { subject: '' }, 'subject'],
    ['a too long subject', { subject: 's'.repeat(201) }, 'subject'],
    ['an empty body', { body: '' }, 'body'],
    ['a too long body', { body: 'b'.repeat(100_001) }, 'body'],
    ['an unknown field', { priority: 'high' }, 'priority'],
  ])('rejects %s with 400', async (_name, override, field) => {
    const res = await call('POST', '/notifications', { ...mail('Invalid'), ...override });
    expectProblem(res, 400, 'validation_failed');
    expect((res.body['errors'] as { field: string }[]).map((e) => e.field)).toContain(field);
  });

  it('rejects a missing field and a bad Idempotency-Key with 400', async () => {
    const { to: _omit, ...noTo } = mail('No recipient');
    expectProblem(await call('POST', '/notifications', noTo), 400, 'validation_failed');
    for (const key of ['has space', 'x'.repeat(201), 'semi;colon']) {
      const res = await call('POST', '/notifications', mail('Bad key'), { 'idempotency-key': key });
      expectProblem(res, 400, 'validation_failed');
      expect(res.body['errors']).toEqual([{ field: 'Idempotency-Key', message: expect.any(String) }]);
    }
  });

  it('answers 404 for an unknown id and 400 for one that is not a UUID', async () => {
    expectProblem(await call('GET', `/notifications/${randomUUID()}`), 404, 'notification_not_found');
    expectProblem(await call('GET', '/notifications/123'), 400, 'validation_failed');
    expectProblem(await call('GET', '/notifications/not-a-uuid'), 400, 'validation_failed');
  });

  it('retries after 451 answers and then delivers, with the same Message-ID every time', async () => {
    const res = await call('POST', '/notifications', mail('Greylisted [tempfail:2]'));
    const id = res.body['id'] as string;
    const final = await settled(id);
    expect(final).toMatchObject({ status: 'delivered', lastError: null });
    expect(final['attempts']).toBeGreaterThanOrEqual(3);
    const seen = byMessageId(id);
    expect(seen.map((m) => m.accepted)).toEqual([false, false, true]);
  });

  it('fails at once on a permanent 550 refusal, keeping the reply as lastError', async () => {
    const res = await call('POST', '/notifications', mail('Nobody home [reject]'));
    const final = await settled(res.body['id'] as string);
    expect(final).toMatchObject({ status: 'failed', attempts: 1, deliveredAt: null });
    expect(final['lastError']).toMatch(/550/);
    expect(byMessageId(res.body['id'] as string)).toHaveLength(1);
  });

  it('dead-letters after SMTP_RETRY_MAX_ATTEMPTS transient failures', async () => {
    const res = await call('POST', '/notifications', mail('Always busy [tempfail:always]'));
    const id = res.body['id'] as string;
    const final = await settled(id);
    expect(final).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS });
    expect(final['lastError']).toMatch(/451/);
    await sleep(300);
    expect(byMessageId(id)).toHaveLength(MAX_ATTEMPTS);
  });

  it('answers 202 without waiting for a slow SMTP server', async () => {
    const before = performance.now();
    const res = await call('POST', '/notifications', mail('Slow server [slow:2000]'));
    const elapsed = performance.now() - before;
    expect(res.status).toBe(202);
    expect(elapsed).toBeLessThan(1_000);
    const final = await settled(res.body['id'] as string);
    expect(final['status']).toBe('delivered');
  });

  it('lets only the caller who asked, and admins, read a notification; others get 404', async () => {
    const res = await call('POST', '/notifications', mail('Mine only'));
    expect(res.status).toBe(202);
    const id = res.body['id'] as string;
    expect((await call('GET', `/notifications/${id}`)).status).toBe(200);
    expect((await call('GET', `/notifications/${id}`, undefined, bearer(ADMIN))).status).toBe(200);
    // Someone else's id looks exactly like one that does not exist.
    const other = await call('GET', `/notifications/${id}`, undefined, bearer(OTHER));
    expectProblem(other, 404, 'notification_not_found');
    expect(other.body['detail']).toBe(`No notification with id ${id}`);
    const anonymous = await fetch(`${t.url}/notifications/${id}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
  });

  it('needs notifications:write to send: anonymous is 401, a token without the scope 403, and nothing is stored', async () => {
    const before = smtp.all.length;
    const anonymous = await fetch(`${t.url}/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(mail('Open relay?')),
    });
    expect(anonymous.status).toBe(401);
    const reader = await mintToken({ sub: 'reader', scope: 'users:write' });
    const scoped = await call('POST', '/notifications', mail('Wrong scope'), bearer(reader));
    expectProblem(scoped, 403, 'insufficient_scope');
    expect(scoped.headers.get('www-authenticate')).toBe(
      'Bearer realm="nest-async-api", error="insufficient_scope", scope="notifications:write"',
    );
    await sleep(300);
    expect(smtp.all.length).toBe(before);
  });

  it('scopes an idempotency key to its caller: the same key from two callers is two notifications', async () => {
    const key = `shared-${randomUUID()}`;
    const mine = await call('POST', '/notifications', mail('Key one'), { 'idempotency-key': key });
    const theirs = await call('POST', '/notifications', mail('Key two'), { 'idempotency-key': key, ...bearer(OTHER) });
    expect([mine.status, theirs.status]).toEqual([202, 202]);
    expect(theirs.body['id']).not.toBe(mine.body['id']);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
    expect((await call('GET', `/notifications/${theirs.body['id'] as string}`, undefined, bearer(OTHER))).status).toBe(
      200,
    );
  });

  it('sends notification events on /events only to the caller they belong to (and admins)', async () => {
    const url = `${t.url}/events?types=notification.delivered`;
    const types = ['notification.delivered'];
    const mine = subscribe(url, types, undefined, bearer(SENDER));
    const others = subscribe(url, types, undefined, bearer(OTHER));
    const admin = subscribe(`${url}&access_token=${ADMIN}`, types);
    const anonymous = subscribe(url, types);
    const streams = [mine, others, admin, anonymous];
    try {
      await Promise.all(streams.map((s) => s.opened));
      const res = await call('POST', '/notifications', mail('Watched'));
      const id = res.body['id'] as string;
      await settled(id);
      const seen = (stream: (typeof streams)[number]) =>
        stream.received.filter((e) => (e.data as { notificationId: string }).notificationId === id);
      await waitFor(() => seen(mine).length === 1 && seen(admin).length === 1);
      await sleep(300);
      expect(seen(mine)[0]?.data).toMatchObject({ notificationId: id, requestedBy: 'sender-1' });
      expect(seen(others)).toHaveLength(0);
      expect(seen(anonymous)).toHaveLength(0);
    } finally {
      for (const stream of streams) stream.source.close();
    }
  });

  it('exposes queue and delivery metrics', async () => {
    const text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^notifications_queue_depth\{state="delivered"\} [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_queue_depth\{state="failed"\} [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_delivered_total [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_failures_total\{kind="transient"\} [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_failures_total\{kind="permanent"\} [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_failures_total\{kind="dead"\} [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_attempts_total [1-9]\d*$/m);
    expect(text).toMatch(/^notifications_delivery_latency_seconds_count [1-9]\d*$/m);
  });
});

describe('notifications without SMTP_URL', () => {
  it('writes each message as an .eml file into MAIL_OUTBOX_DIR', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mail-outbox-'));
    const dev = await startTestApp({ MAIL_OUTBOX_DIR: join(dir, 'mail'), NOTIFY_POLL_INTERVAL_MS: '50' });
    try {
      const res = await fetch(`${dev.url}/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(SENDER) },
        body: JSON.stringify({ channel: 'email', to: 'dev@example.org', subject: 'Dev mail', body: 'Hello outbox' }),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const deadline = Date.now() + 30_000;
      let status = 'queued';
      while (status !== 'delivered' && Date.now() < deadline) {
        await sleep(50);
        const answer = await fetch(`${dev.url}/notifications/${id}`, { headers: bearer(SENDER) });
        status = ((await answer.json()) as { status: string }).status;
      }
      expect(status).toBe('delivered');
      const files = readdirSync(join(dir, 'mail'));
      expect(files).toEqual([expect.stringContaining(id)]);
      const eml = readFileSync(join(dir, 'mail', files[0]!), 'utf8');
      expect(eml).toContain(`Message-ID: <${id}@nest-async-api>`);
      expect(eml).toContain('Subject: Dev mail');
      expect(eml).toContain('Hello outbox');
      expect(dev.logs.some((l) => l['msg'] === 'mail written to outbox')).toBe(true);
    } finally {
      await dev.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
