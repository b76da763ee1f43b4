import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { processEnv } from '../../src/config/load-config.js';
import { startSharedInstances, type AppProcess } from '../support/app-process.js';
import { ChatClient, type Frame } from '../support/chat-client.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { subscribe } from '../support/sse-client.js';
import { proxyTo, type TcpProxy } from '../support/tcp-proxy.js';
import { bearer, mintToken } from '../support/tokens.js';

/*
 * Two instances of the built service share Redis through a TCP proxy the test
 * cuts and restores while clients read users and cached profiles, create users,
 * get rate limited, chat and follow /events. Redis being away may cost sharing
 * (chat and /events stay within an instance, budgets become per instance), never
 * an answer: no 5xx, and once Redis is back everything is shared again without
 * a restart. Needs REDIS_URL (CI's real-service pass sets it).
 */
const env = processEnv();
const redisUrl = env['REDIS_URL'] || undefined;
const databaseUrl = env['DATABASE_URL'] || undefined;
if (redisUrl === undefined) console.warn('[skip] Redis outage under load: REDIS_URL not set');
const describeRedis = redisUrl === undefined ? describe.skip : describe;

type Phase = 'before' | 'outage' | 'after';
const ACCEPTED_STATUSES = new Set([200, 201, 304, 429]);
/** Token callers' budget: capacity 20, 5 per second, shared by both instances through Redis. */
const BUDGET = { rate: 5, capacity: 20 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${String(ms)} ms`);
    await sleep(50);
  }
}

interface Answer {
  readonly route: string;
  readonly instance: 'a' | 'b';
  readonly status: number;
  readonly phase: Phase;
}

/** Pino's JSON lines of one process, parsed (other lines dropped). */
function logLines(app: AppProcess): { level: number; msg: string }[] {
  return app
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string });
}

describeRedis('Redis cut and restored under load, two instances', () => {
  let proxy: TcpProxy;
  let a: AppProcess | undefined;
  let b: AppProcess | undefined;
  let simulator: Awaited<ReturnType<typeof startSimulatorProcess>> | undefined;
  let dropDatabase: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const proxied = await proxyTo(redisUrl ?? '', 6379);
    proxy = proxied.proxy;
    simulator = await startSimulatorProcess();
    const shared: Record<string, string> = {
      REDIS_URL: proxied.url,
      REDIS_KEY_PREFIX: `outage-${randomUUID().slice(0, 8)}:`,
      LOG_LEVEL: 'info',
      RATE_LIMIT_RATE: String(BUDGET.rate),
      RATE_LIMIT_CAPACITY: String(BUDGET.capacity),
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      NOTIFY_WORKER_ENABLED: 'false',
    };
    const started = await startSharedInstances(databaseUrl, 2, shared);
    [a, b] = started.apps;
    dropDatabase = started.drop;
  }, 90_000);

  afterAll(async () => {
    const codes = [await b?.stop(), await a?.stop()];
    await simulator?.stop();
    await proxy.close();
    await dropDatabase();
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  it('answers every request, keeps chat and /events local while Redis is away, and shares again after', async () => {
    const apps = { a: a!, b: b! };
    const instances = ['a', 'b'] as const;
    let phase: Phase = 'before';
    let running = true;
    const answers: Answer[] = [];
    const writer = bearer(await mintToken({ sub: `writer-${randomUUID()}`, scope: 'users:write' }));
    const prober = bearer(await mintToken({ sub: `prober-${randomUUID()}`, scope: 'users:write' }));

    const request = async (instance: 'a' | 'b', route: string, path: string, init: RequestInit = {}) => {
      const at = phase;
      const res = await fetch(`${apps[instance].url}${path}`, init);
      answers.push({ route, instance, status: res.status, phase: at });
      return res;
    };
    const createUser = async (instance: 'a' | 'b', as = writer) => {
      const tag = randomUUID().slice(0, 8);
      const res = await request(instance, 'POST /users', '/users', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...as },
        body: JSON.stringify({ name: `Outage ${tag}`, email: `outage-${tag}@example.org` }),
      });
      return res.status === 201 ? ((await res.json()) as { id: number }).id : undefined;
    };

    const seedIds: number[] = [];
    for (let i = 0; i < 4; i++) seedIds.push((await createUser(i % 2 === 0 ? 'a' : 'b'))!);

    // /events on each instance, and chat: a talker and a listener on each.
    const follow = (instance: 'a' | 'b') =>
      subscribe(`${apps[instance].url}/events?types=user.created`, ['user.created']);
    const events = { a: follow('a'), b: follow('b') };
    await Promise.all([events.a.opened, events.b.opened]);
    const room = `outage-${randomUUID().slice(0, 8)}`;
    const chat = {
      a: { talker: await ChatClient.as(apps.a, 'ada'), listener: await ChatClient.as(apps.a, 'alan') },
      b: { talker: await ChatClient.as(apps.b, 'bea'), listener: await ChatClient.as(apps.b, 'bob') },
    };
    const clients = instances.flatMap((i) => [chat[i].talker, chat[i].listener]);
    for (const client of clients) await client.join(room);

    const sent: { text: string; instance: 'a' | 'b'; phase: Phase }[] = [];
    const created: { id: number; instance: 'a' | 'b'; phase: Phase }[] = [];

    // The load: 12 readers (their own budgets, under their rate), one greedy caller far over
    // its budget, one writer, two chat talkers.
    const loops: Promise<void>[] = [];
    const loop = (everyMs: number, step: (n: number) => Promise<void>) =>
      loops.push(
        (async () => {
          for (let n = 0; running; n++) {
            await step(n);
            await sleep(everyMs);
          }
        })(),
      );
    for (let r = 0; r < 12; r++) {
      const reader = bearer(await mintToken({ sub: `reader-${String(r)}-${randomUUID()}` }));
      const etags = new Map<number, string>();
      loop(400, async (n) => {
        const instance = instances[(n + r) % 2]!;
        const id = seedIds[(n + r) % seedIds.length]!;
        if (n % 2 === 0) {
          await request(instance, 'GET /users/:id', `/users/${String(id)}`, { headers: reader });
          return;
        }
        const etag = etags.get(id);
        const res = await request(instance, 'GET /profiles/:userId', `/profiles/${String(id)}`, {
          headers: { ...reader, ...(etag === undefined ? {} : { 'if-none-match': etag }) },
        });
        const tag = res.headers.get('etag');
        if (tag !== null) etags.set(id, tag);
        await res.arrayBuffer();
      });
    }
    const greedy = bearer(await mintToken({ sub: `greedy-${randomUUID()}` }));
    loop(10, async (n) => {
      await request(instances[n % 2]!, 'GET /users', '/users?limit=1', { headers: greedy });
    });
    loop(300, async (n) => {
      const instance = instances[n % 2]!;
      const at = phase;
      const id = await createUser(instance);
      // A create that straddles a phase change is counted in the outage: its event may have
      // been published on either side of the cut.
      if (id !== undefined) created.push({ id, instance, phase: at === phase ? at : 'outage' });
    });
    for (const instance of instances) {
      loop(200, async (n) => {
        const text = `${instance}-${String(n)}-${randomUUID().slice(0, 6)}`;
        sent.push({ text, instance, phase });
        chat[instance].talker.send({ type: 'message', room, text, clientMsgId: text });
        await Promise.resolve();
      });
    }

    try {
      // The phase turns a second before the cut, so whatever is counted as 'before' was
      // published (and its Redis round trip answered) while Redis was still there.
      await sleep(1500);
      phase = 'outage';
      await sleep(1000);
      await proxy.cut();
      await sleep(4000);
      await proxy.restore();
      // Back: a message from A reaches B, and a user created on B reaches /events on A.
      await until(
        'cross-instance chat after the restore',
        async () => {
          const text = `probe-${randomUUID().slice(0, 8)}`;
          chat.a.listener.send({ type: 'message', room, text, clientMsgId: text });
          try {
            await chat.b.listener.next((f) => f.type === 'message' && f['text'] === text, 1000);
            return true;
          } catch {
            return false;
          }
        },
        20_000,
      );
      await until(
        'the event stream after the restore',
        async () => {
          const id = await createUser('b', prober);
          await sleep(500);
          return events.a.received.some((e) => e.data.userId === id && e.id !== '');
        },
        20_000,
      );
      phase = 'after';
      await sleep(2500);
    } finally {
      running = false;
      await Promise.all(loops);
      // Late deliveries land before anything is counted.
      await sleep(500);
      for (const client of clients) client.close();
      events.a.source.close();
      events.b.source.close();
    }

    // Every answer is a success, a 304 or a 429: Redis away is never an error.
    const unexpected = answers.filter((x) => !ACCEPTED_STATUSES.has(x.status));
    expect(unexpected).toEqual([]);
    for (const p of ['before', 'outage', 'after'] as const) {
      expect(answers.filter((x) => x.phase === p && x.route === 'GET /profiles/:userId').length).toBeGreaterThan(10);
      expect(
        answers.filter((x) => x.phase === p && x.route === 'POST /users' && x.status === 201).length,
      ).toBeGreaterThan(3);
    }
    // The greedy caller was held to its budget throughout; the readers never were.
    expect(answers.filter((x) => x.route === 'GET /users' && x.status === 429).length).toBeGreaterThan(50);
    expect(answers.filter((x) => x.route !== 'GET /users' && x.status === 429)).toEqual([]);

    // Chat: no message delivered twice to anyone; every one reached its own instance; outside
    // the outage, every one reached both instances.
    const textsOf = (client: ChatClient) =>
      client.log.filter((f: Frame) => f.type === 'message').map((f) => String(f['text']));
    for (const client of clients) {
      const texts = textsOf(client);
      expect(texts.length - new Set(texts).size).toBe(0);
    }
    const acks = instances.map((i) => chat[i].talker.log.filter((f) => f.type === 'ack').length);
    expect(acks[0]! + acks[1]!).toBe(sent.length);
    for (const message of sent) {
      const own = chat[message.instance].listener;
      const other = chat[message.instance === 'a' ? 'b' : 'a'].listener;
      expect({ text: message.text, local: textsOf(own).includes(message.text) }).toEqual({
        text: message.text,
        local: true,
      });
      if (message.phase !== 'outage') {
        expect({ text: message.text, remote: textsOf(other).includes(message.text) }).toEqual({
          text: message.text,
          remote: true,
        });
      }
    }

    // /events: each instance's own users always; the other's outside the outage; none twice.
    for (const instance of instances) {
      const ids = events[instance].received.map((e) => e.data.userId as number);
      expect(ids.length - new Set(ids).size).toBe(0);
      for (const user of created) {
        if (user.instance !== instance && user.phase === 'outage') continue;
        expect({ user, seen: ids.includes(user.id) }).toEqual({ user, seen: true });
      }
    }

    // One budget per caller again: 30 alternating requests admit about the capacity, not twice it.
    const shared = bearer(await mintToken({ sub: `shared-${randomUUID()}` }));
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push((await fetch(`${apps[instances[i % 2]!].url}/users?limit=1`, { headers: shared })).status);
    }
    const allowed = statuses.filter((s) => s === 200).length;
    expect(allowed).toBeGreaterThanOrEqual(BUDGET.capacity);
    expect(allowed).toBeLessThan(BUDGET.capacity + 6);

    // Each instance logged the loss once and the recovery once, and nothing at error level.
    for (const app of [apps.a, apps.b]) {
      const lines = logLines(app);
      expect(lines.filter((l) => l.msg.startsWith('redis connection lost')).length).toBe(1);
      expect(lines.filter((l) => l.msg === 'redis connection restored').length).toBe(1);
      expect(lines.filter((l) => l.level >= 50)).toEqual([]);
      // A feature's failure from the outage itself is part of that one line; a feature may
      // still warn once when a connected Redis was slow under this load.
      const others = lines.filter((l) => l.level === 40 && !l.msg.startsWith('redis connection lost'));
      expect(others.filter((l) => /Offline|SocketClosed|ECONNREFUSED/.test(JSON.stringify(l)))).toEqual([]);
      expect(others.length - new Set(others.map((l) => l.msg)).size).toBe(0);
    }
  }, 120_000);
});
