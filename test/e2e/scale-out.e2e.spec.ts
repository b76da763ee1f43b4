import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import { processEnv } from '../../src/config/load-config.js';
import { startAppProcess, type AppProcess } from '../support/app-process.js';
import { ChatClient, type Frame } from '../support/chat-client.js';
import { nginxAvailable, startNginx, type NginxProcess } from '../support/nginx-process.js';
import { freePort } from '../support/simulator-process.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { createTestDatabase } from '../support/test-database.js';
import { bearer, mintToken } from '../support/tokens.js';

/*
 * Scale-out as the compose `scale` profile runs it: two instances of the built
 * service behind Debian's nginx, running deploy/nginx/nginx.conf itself (only
 * its upstream servers and listen port swapped), sharing PostgreSQL and Redis.
 * Needs REDIS_URL (there is nothing to share otherwise) and nginx; skips with
 * a notice without them. Without DATABASE_URL, a third process that takes no
 * traffic serves its embedded database to the others, so either instance can
 * be restarted.
 */
const env = processEnv();
const redisUrl = env['REDIS_URL'] || undefined;
const databaseUrl = env['DATABASE_URL'] || undefined;
const skipReason = redisUrl === undefined ? 'REDIS_URL not set' : !nginxAvailable() ? 'nginx not installed' : undefined;
if (skipReason !== undefined) console.warn(`[skip] scale-out behind nginx: ${skipReason}`);
const describeScale = skipReason === undefined ? describe : describe.skip;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hostPort = (p: AppProcess) => new URL(p.url).host;
/** Starts take longer while the rest of the suite loads both cores. */
const READY = { readyTimeoutMs: 60_000 };
/**
 * A verified caller of its own (a fresh sub, so a bucket of its own), so a request never draws on
 * the budget the rate-limit test measures; an admin, as this suite is not about access control.
 */
const ownKey = async () => bearer(await mintToken({ sub: `scale-${randomUUID()}`, scope: 'admin' }));

/** Sum of the series of one metric (those whose labels include `labels`) on one instance, read from it directly. */
async function metric(instance: AppProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] === name && (match[2] ?? '').includes(labels)) sum += Number(match[3]);
  }
  return sum;
}

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error('condition not met in time');
    await sleep(20);
  }
}

const messageWith = (text: string) => (f: Frame) => f.type === 'message' && f['text'] === text;

describeScale('two instances behind nginx sharing PostgreSQL and Redis', () => {
  let nginx: NginxProcess | undefined;
  let sink: SmtpSink | undefined;
  let databaseHost: AppProcess | undefined;
  /** The instances behind nginx now, replaced during the rolling restart. */
  const live: AppProcess[] = [];
  let instanceEnv: Record<string, string> = {};
  let dropDatabase: () => Promise<void> = async () => {};

  beforeAll(async () => {
    sink = await startSmtpSink();
    const prefix = `scale-${randomUUID().slice(0, 8)}:`;
    instanceEnv = {
      REDIS_URL: redisUrl ?? '',
      REDIS_KEY_PREFIX: prefix,
      // nginx connects from 127.0.0.1 and says who the client is in X-Forwarded-For.
      TRUST_PROXY: '127.0.0.1',
      RATE_LIMIT_RATE: '1',
      RATE_LIMIT_CAPACITY: '10',
      SMTP_URL: sink.url,
      NOTIFY_POLL_INTERVAL_MS: '100',
      SHUTDOWN_DRAIN_DELAY_MS: '500',
      DB_POOL_SIZE: '4',
    };
    if (databaseUrl !== undefined) {
      const db = await createTestDatabase(databaseUrl);
      dropDatabase = db.drop;
      instanceEnv['DATABASE_URL'] = db.url ?? '';
    } else {
      const port = await freePort();
      databaseHost = await startAppProcess(
        {
          // Its own prefix and no worker: it only serves the database.
          REDIS_URL: redisUrl ?? '',
          REDIS_KEY_PREFIX: `scale-db-${randomUUID().slice(0, 8)}:`,
          NOTIFY_WORKER_ENABLED: 'false',
          PGLITE_DATA_DIR: 'memory://',
          PGLITE_PORT: String(port),
          DB_POOL_SIZE: '14',
        },
        READY,
      );
      instanceEnv['DATABASE_URL'] = `postgres://postgres@127.0.0.1:${String(port)}/postgres`;
    }
    // One at a time, so afterAll stops whichever started if the other does not.
    live.push(await startAppProcess(instanceEnv, READY));
    live.push(await startAppProcess(instanceEnv, READY));
    nginx = await startNginx(live.map(hostPort));
  }, 120_000);

  afterAll(async () => {
    await nginx?.stop();
    const codes = [];
    for (const instance of live) codes.push(await instance.stop());
    await databaseHost?.stop();
    await sink?.close();
    await dropDatabase();
    expect(codes).toEqual(live.map(() => 0));
  }, 60_000);

  it('carries chat across the two instances nginx spreads WebSockets over, once each way', async () => {
    const room = `scale-${randomUUID().slice(0, 8)}`;
    const one = await ChatClient.open(nginx!);
    const two = await ChatClient.open(nginx!);
    try {
      // Round robin: one connection on each instance.
      await until(async () => (await metric(live[0]!, 'chat_connections')) === 1);
      await until(async () => (await metric(live[1]!, 'chat_connections')) === 1);

      await one.join(room, 'anna');
      await two.join(room, 'bert');
      one.send({ type: 'message', room, text: 'one to two' });
      two.send({ type: 'message', room, text: 'two to one' });
      for (const client of [one, two]) {
        await client.next(messageWith('one to two'));
        await client.next(messageWith('two to one'));
      }
      // Give any duplicate time to arrive before counting.
      await sleep(300);
      for (const client of [one, two]) {
        expect(client.log.filter(messageWith('one to two'))).toHaveLength(1);
        expect(client.log.filter(messageWith('two to one'))).toHaveLength(1);
      }
    } finally {
      one.close();
      two.close();
    }
  });

  it('streams /events through nginx unbuffered and passes request ids both ways', async () => {
    const abort = new AbortController();
    const res = await fetch(`${nginx!.url}/events?types=user.created`, {
      headers: await ownKey(),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    let text = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    })().catch(() => {});
    try {
      const created = await fetch(`${nginx!.url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'scale-out-create-1', ...(await ownKey()) },
        body: JSON.stringify({ name: 'Scale Out', email: `scale-${randomUUID().slice(0, 8)}@example.org` }),
      });
      expect(created.status).toBe(201);
      expect(created.headers.get('x-request-id')).toBe('scale-out-create-1');
      const { id } = (await created.json()) as { id: number };
      // A buffering proxy would hold this event back; the stream never ends on its own.
      await until(() => text.includes(`"userId":${String(id)}`), 5000);

      // Without one, nginx makes the id ($request_id) and the instance keeps it.
      const plain = await fetch(`${nginx!.url}/health`);
      expect(plain.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      abort.abort();
      await reading;
    }
  });

  it('charges one client to one rate-limit budget across both instances, keyed on the real client', async () => {
    const from = (localAddress: string) => new Agent({ localAddress });
    const client = from('127.0.0.2');
    const other = from('127.0.0.3');
    const rejectedBefore = await Promise.all(live.map((i) => metric(i, 'rate_limit_rejections_total')));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        // A forged X-Forwarded-For changes nothing: nginx replaces it with the address it sees.
        const headers = i % 2 === 0 ? { 'x-forwarded-for': `10.0.0.${String(i)}` } : undefined;
        const res = await undiciFetch(`${nginx!.url}/users?limit=1`, { dispatcher: client, headers });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      const allowed = statuses.filter((s) => s === 200).length;
      // Capacity 10 shared, plus at most a few tokens refilled at 1/s; two budgets would allow all 20.
      expect(allowed).toBeGreaterThanOrEqual(10);
      expect(allowed).toBeLessThanOrEqual(13);
      expect(statuses.filter((s) => s === 429)).toHaveLength(20 - allowed);
      // Both instances turned the client away: round robin sent it to each, and each saw the empty bucket.
      const rejectedAfter = await Promise.all(live.map((i) => metric(i, 'rate_limit_rejections_total')));
      for (const [i, n] of rejectedAfter.entries()) expect(n - (rejectedBefore[i] ?? 0)).toBeGreaterThan(0);

      // Another client address behind the same nginx has its own full budget (keyed on nginx's
      // address, both would share one and these would be refused).
      for (let i = 0; i < 5; i++) {
        const res = await undiciFetch(`${nginx!.url}/users?limit=1`, { dispatcher: other });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
      }
    } finally {
      await client.close();
      await other.close();
    }
  });

  it('delivers each of 100 notifications posted through nginx exactly once, whichever instance takes it', async () => {
    const before = await Promise.all(live.map((i) => metric(i, 'notifications_delivered_total')));
    const ids: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const posted = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const res = await fetch(`${nginx!.url}/notifications`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(await ownKey()) },
            body: JSON.stringify({
              channel: 'email',
              to: `user${String(batch * 10 + i)}@example.org`,
              subject: `scale ${String(batch * 10 + i)}`,
              body: 'hello',
            }),
          });
          expect(res.status).toBe(202);
          return ((await res.json()) as { id: string }).id;
        }),
      );
      ids.push(...posted);
    }
    let pending = [...ids];
    await until(async () => {
      const states = await Promise.all(
        pending.map(async (id) => {
          const res = await fetch(`${nginx!.url}/notifications/${id}`, { headers: await ownKey() });
          return { id, status: ((await res.json()) as { status: string }).status };
        }),
      );
      expect(states.filter((s) => s.status === 'failed')).toEqual([]);
      pending = states.filter((s) => s.status !== 'delivered').map((s) => s.id);
      return pending.length === 0;
    }, 30_000);
    // Any duplicate would be a second send right after the first; give it time to show.
    await sleep(500);

    const received = sink!.accepted().map((m) => m.messageId);
    const wanted = new Set(ids.map((id) => `<${id}@nest-async-api>`));
    expect(received.filter((m) => wanted.has(m)).sort()).toEqual([...wanted].sort());
    expect(new Set(received).size).toBe(received.length);
    const after = await Promise.all(live.map((i) => metric(i, 'notifications_delivered_total')));
    const split = after.map((n, i) => n - (before[i] ?? 0));
    console.info(`[scale-out] 100 notifications delivered by the two instances: ${split.join(' + ')}`);
    expect(split.reduce((s, n) => s + n, 0)).toBe(100);
  }, 60_000);

  it('restarts each instance in turn under load with zero failed requests', async () => {
    const created = await fetch(`${nginx!.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await ownKey()) },
      body: JSON.stringify({ name: 'Rolling', email: `rolling-${randomUUID().slice(0, 8)}@example.org` }),
    });
    const { id } = (await created.json()) as { id: number };

    const statuses = new Map<string, number>();
    // A connection per request between the load clients and nginx: the test's reloads (the
    // replacements listen on new ports) close the old nginx worker's idle keep-alive
    // connections, racing a client that reuses one. nginx keeps its own keep-alive
    // connections to the instances, which is where a restart could lose requests.
    const noKeepAlive = new Agent({ pipelining: 0 });
    let running = true;
    let phase = 'start';
    const client = async () => {
      while (running) {
        let outcome: string;
        try {
          // A route that reads the database on whichever instance answers.
          const res = await undiciFetch(`${nginx!.url}/users/${String(id)}`, {
            headers: await ownKey(),
            dispatcher: noKeepAlive,
          });
          await res.arrayBuffer();
          outcome = String(res.status);
        } catch (error) {
          // fetch's errors come from Node's realm, not Jest's: no instanceof.
          const { cause } = error as { cause?: unknown };
          outcome = `error (${phase}): ${String(cause ?? error)}`;
        }
        statuses.set(outcome, (statuses.get(outcome) ?? 0) + 1);
      }
    };
    const started = Date.now();
    const clients = Array.from({ length: 4 }, client);
    const exitCodes: (number | null)[] = [];
    try {
      await sleep(1000);
      for (const slot of [0, 1]) {
        const old = live[slot]!;
        // SIGTERM: /ready turns 503, the drain delay passes, the server stops accepting.
        phase = `stop ${String(slot)}`;
        exitCodes.push(await old.stop());
        phase = `start ${String(slot)}`;
        const replacement = await startAppProcess(instanceEnv, READY);
        live[slot] = replacement;
        phase = `reload ${String(slot)}`;
        await nginx!.reload(live.map(hostPort));
        phase = `after ${String(slot)}`;
        await sleep(1000);
      }
    } finally {
      running = false;
      await Promise.all(clients);
      await noKeepAlive.close();
    }
    const seconds = (Date.now() - started) / 1000;
    const total = [...statuses.values()].reduce((s, n) => s + n, 0);
    console.info(
      `[scale-out] rolling restart: ${String(total)} requests in ${seconds.toFixed(1)} s, outcomes ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect(exitCodes).toEqual([0, 0]);
    expect(Object.fromEntries(statuses)).toEqual({ '200': total });
    expect(total).toBeGreaterThan(100);
    // Both replacements took traffic after the reload.
    for (const instance of live) {
      expect(await metric(instance, 'http_requests_total', 'route="/users/:id"')).toBeGreaterThan(0);
    }
  }, 180_000);
});
