import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { processEnv } from '../../src/config/load-config.js';
import { startSharedInstances, type AppProcess } from '../support/app-process.js';
import { ChatClient, type Frame } from '../support/chat-client.js';
import { subscribe } from '../support/sse-client.js';
import { bearer, mintToken } from '../support/tokens.js';

/*
 * Two instances of the built service as separate processes on different ports,
 * sharing one PostgreSQL and one Redis, as behind a load balancer. Without
 * REDIS_URL there is nothing to share between processes, so the suite skips
 * (CI's real-service pass sets it). With REDIS_URL but no DATABASE_URL, the
 * first process serves its embedded database and the second connects to it.
 */
const env = processEnv();
const redisUrl = env['REDIS_URL'] || undefined;
const databaseUrl = env['DATABASE_URL'] || undefined;
if (redisUrl === undefined) console.warn('[skip] two app processes sharing Redis: REDIS_URL not set');
const describeShared = redisUrl === undefined ? describe.skip : describe;

/** A subscriber to `/events?types=user.created`, resuming after `lastEventId` when given. */
const follow = (baseUrl: string, lastEventId?: string) =>
  subscribe(`${baseUrl}/events?types=user.created`, ['user.created', 'reset'], lastEventId);

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function createUser(baseUrl: string): Promise<number> {
  const tag = randomUUID().slice(0, 8);
  const res = await fetch(`${baseUrl}/users`, {
    method: 'POST',
    // Each call its own caller (a fresh sub), so these never draw on the budget the limit test measures.
    headers: {
      'content-type': 'application/json',
      ...bearer(await mintToken({ sub: `setup-${tag}`, scope: 'users:write' })),
    },
    body: JSON.stringify({ name: `Instance ${tag}`, email: `instance-${tag}@example.org` }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

const messageWith = (text: string) => (f: Frame) => f.type === 'message' && f['text'] === text;

describeShared('two app processes sharing PostgreSQL and Redis', () => {
  let a: AppProcess | undefined;
  let b: AppProcess | undefined;
  let dropDatabase: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const shared: Record<string, string> = {
      REDIS_URL: redisUrl ?? '',
      REDIS_KEY_PREFIX: `instances-${randomUUID().slice(0, 8)}:`,
      RATE_LIMIT_RATE: '1',
      RATE_LIMIT_CAPACITY: '10',
      CHAT_RATE_PER_SEC: '1000',
      CHAT_RATE_BURST: '1000',
    };
    const started = await startSharedInstances(databaseUrl, 2, shared);
    [a, b] = started.apps;
    dropDatabase = started.drop;
  }, 90_000);

  afterAll(async () => {
    // Both shut down cleanly on SIGTERM (exit code 0).
    const codes = [await b?.stop(), await a?.stop()];
    await dropDatabase();
    expect(codes).toEqual([0, 0]);
  }, 30_000);

  it('carries chat messages and presence across instances, once each', async () => {
    const room = `x-${randomUUID().slice(0, 8)}`;
    const onA = await ChatClient.as({ url: a!.url }, 'anna');
    const onB = await ChatClient.as({ url: b!.url }, 'bert');
    try {
      await onA.join(room);
      await onB.join(room);
      expect(await onA.nextOf('presence', (f) => f['name'] === 'bert')).toMatchObject({ event: 'joined', count: 2 });

      onA.send({ type: 'message', room, text: 'from A', clientMsgId: 'a-1' });
      const ack = await onA.nextOf('ack');
      expect(await onB.next(messageWith('from A'))).toMatchObject({ room, author: 'anna', id: ack['id'] });

      onB.send({ type: 'message', room, text: 'from B' });
      await onA.next(messageWith('from B'));
      await onB.next(messageWith('from B'));
      // Give any duplicate time to arrive before counting.
      await new Promise((r) => setTimeout(r, 300));
      for (const client of [onA, onB]) {
        expect(client.log.filter(messageWith('from A'))).toHaveLength(1);
        expect(client.log.filter(messageWith('from B'))).toHaveLength(1);
      }
    } finally {
      onA.close();
      onB.close();
    }
  });

  it('never delivers a message twice to a client joining while messages stream in from the other instance', async () => {
    const room = `race-${randomUUID().slice(0, 8)}`;
    const talker = await ChatClient.as({ url: b!.url }, 'tara');
    await talker.join(room);
    let talking = true;
    const talk = (async () => {
      for (let n = 0; talking; n++) {
        talker.send({ type: 'message', room, text: `race ${String(n)}` });
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const seen: number[][] = [];
    try {
      for (let round = 0; round < 25; round++) {
        const listener = await ChatClient.as({ url: a!.url }, `lena${String(round)}`);
        const ids: number[] = [];
        listener.ws.on('message', (data: Buffer) => {
          const frame = JSON.parse(data.toString('utf8')) as Frame;
          if (frame.type === 'message') ids.push(Number(frame['id']));
        });
        for (const m of await listener.join(room)) ids.push(m.id);
        await new Promise((r) => setTimeout(r, 60));
        listener.close();
        seen.push(ids);
      }
    } finally {
      talking = false;
      await talk;
      talker.close();
    }
    // Each join saw history and then live messages: none of them twice.
    expect(seen.map((ids) => ids.length - new Set(ids).size)).toEqual(seen.map(() => 0));
    expect(seen.every((ids) => ids.length > 0)).toBe(true);
  });

  it('lets a client whose ack was lost reconnect to the other instance, catch up and resend safely', async () => {
    const room = `x-${randomUUID().slice(0, 8)}`;
    const watcher = await ChatClient.open({ url: b!.url });
    await watcher.join(room, 'watcher');
    // The resend must be the same author's: one token on both connections.
    const first = await ChatClient.as({ url: a!.url }, 'carol');
    await first.join(room);
    first.send({ type: 'message', room, text: 'before the drop', clientMsgId: 'c-1' });
    const seen = await watcher.next(messageWith('before the drop'));
    first.ws.terminate(); // the ack may or may not have arrived: the client cannot know

    const again = await ChatClient.as({ url: b!.url }, 'carol');
    try {
      const missed = await again.join(room, undefined, 0);
      expect(missed.map((m) => m.text)).toEqual(['before the drop']);
      again.send({ type: 'message', room, text: 'before the drop', clientMsgId: 'c-1' });
      expect(await again.nextOf('ack')).toMatchObject({ clientMsgId: 'c-1', id: seen['id'] });
      again.send({ type: 'message', room, text: 'after the drop' });
      await watcher.next(messageWith('after the drop'));
      expect(watcher.log.filter(messageWith('before the drop'))).toHaveLength(1);
    } finally {
      again.close();
      watcher.close();
    }
  });

  it('streams /events from either instance and resumes on the other after Last-Event-ID without gap or duplicate', async () => {
    const live = follow(b!.url);
    let lastSeen: string;
    try {
      await live.opened;
      const firstId = await createUser(a!.url);
      await until(() => live.received.some((e) => e.data.userId === firstId));
      lastSeen = live.received.at(-1)!.id;
    } finally {
      live.source.close();
    }

    const missedIds = [await createUser(a!.url), await createUser(b!.url), await createUser(a!.url)];
    const resumed = follow(a!.url, lastSeen);
    try {
      await resumed.opened;
      const liveId = await createUser(b!.url);
      await until(() => resumed.received.some((e) => e.data.userId === liveId));
      expect(resumed.received.map((e) => e.type)).not.toContain('reset');
      expect(resumed.received.map((e) => e.data.userId)).toEqual([...missedIds, liveId]);
      const ids = resumed.received.map((e) => Number(e.id));
      expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? 0))).toBe(true);
      expect(ids[0]).toBeGreaterThan(Number(lastSeen));
    } finally {
      resumed.source.close();
    }
  });

  it('charges one client to one rate-limit budget across both instances', async () => {
    // One verified caller: both instances charge the bucket of its sub.
    const client = bearer(await mintToken({ sub: `one-budget-${randomUUID()}` }));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const target = i % 2 === 0 ? a! : b!;
      const res = await fetch(`${target.url}/users?limit=1`, { headers: client });
      statuses.push(res.status);
    }
    const allowed = statuses.filter((s) => s === 200).length;
    // Capacity 10 shared, plus at most a few tokens refilled at 1/s during the burst;
    // two separate buckets would have let all 20 through.
    expect(allowed).toBeGreaterThanOrEqual(10);
    expect(allowed).toBeLessThanOrEqual(13);
    expect(statuses.filter((s) => s === 429).length).toBe(20 - allowed);
  });
});
