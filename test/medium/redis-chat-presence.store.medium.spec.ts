import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { RedisChatPresenceStore } from '../../src/chat/redis-chat-presence.store.js';

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) console.warn('[skip] Redis chat presence scripts: REDIS_URL not set');
const describeRedis = redisUrl ? describe : describe.skip;

const LEASE_MS = 3000;
const ada = { name: 'ada', guest: false };
const bob = { name: 'bob "b" 🙂', guest: false };
const cy = { name: 'guest-c0ffee', guest: true };

describeRedis('RedisChatPresenceStore (Lua on a real Redis, on a manual clock)', () => {
  const client = createClient({ url: redisUrl, disableOfflineQueue: true, socket: { reconnectStrategy: false } });
  const keyPrefix = `presence-${randomUUID().slice(0, 8)}:`;
  let t = 1_700_000_000_000;
  /** An instance's store, on the manual clock `t` unless `serverClock`. */
  const store = (instanceId: string, serverClock = false) =>
    new RedisChatPresenceStore(client, {
      keyPrefix,
      instanceId,
      leaseMs: LEASE_MS,
      ...(serverClock ? {} : { now: () => t }),
    });
  const key = (room: string, rest: string) => `${keyPrefix}chat:presence:{${room}}:${rest}`;

  beforeAll(async () => {
    client.on('error', () => undefined);
    await client.connect();
  });
  afterAll(async () => {
    const keys = await client.keys(`${keyPrefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.close();
  });

  it('counts members across instances, and removes a share with its last member', async () => {
    const [a, b] = [store('A'), store('B')];
    expect(await a.join('r1', 'a1', ada)).toEqual({ present: false, count: 1 });
    expect(await b.join('r1', 'b1', bob)).toEqual({ present: false, count: 2 });
    expect(await b.join('r1', 'b2', cy)).toEqual({ present: true, count: 3 });
    expect(await b.leave('r1', 'b1')).toBe(2);
    expect(await b.leave('r1', 'b2')).toBe(1);
    expect(await client.exists(key('r1', 'B'))).toBe(0);
    expect(await client.zRange(key('r1', 'instances'), 0, -1)).toEqual(['A']);
  });

  it('stops counting an instance when its lease runs out, and keeps its share readable past it', async () => {
    const [a, b] = [store('A'), store('B')];
    await a.join('r2', 'a1', ada);
    await b.join('r2', 'b1', bob);
    t += LEASE_MS - 1;
    expect((await a.renew('r2')).swept).toEqual([]);
    expect(await a.leave('r2', 'none')).toBe(2);
    t += 1; // B's lease ends now
    expect(await a.leave('r2', 'none')).toBe(1);
    // Nobody swept yet: the share is still there, and outlives the lease by a minute at least.
    expect(await client.hLen(key('r2', 'B'))).toBe(1);
    expect(await client.pTTL(key('r2', 'B'))).toBeGreaterThan(LEASE_MS);
  });

  it('gives a dead share to exactly one of the instances sweeping at once', async () => {
    const [a, b, c] = [store('A'), store('B'), store('C')];
    await a.join('r3', 'a1', ada);
    await b.join('r3', 'b1', bob);
    await b.join('r3', 'b2', cy);
    await c.join('r3', 'c1', ada);
    // The survivors beat; B does not.
    t += LEASE_MS / 2;
    await Promise.all([a.renew('r3'), c.renew('r3')]);
    t += LEASE_MS / 2;
    const results = await Promise.all([a.renew('r3'), c.renew('r3'), a.renew('r3'), c.renew('r3')]);
    const claims = results.filter((r) => r.swept.length > 0);
    expect(claims).toHaveLength(1);
    expect(claims[0]?.count).toBe(2);
    expect([...(claims[0]?.swept ?? [])].sort((x, y) => x.connectionId.localeCompare(y.connectionId))).toEqual([
      { instance: 'B', connectionId: 'b1', ...bob },
      { instance: 'B', connectionId: 'b2', ...cy },
    ]);
    expect(results.every((r) => !r.lost)).toBe(true);
    expect(await client.exists(key('r3', 'B'))).toBe(0);
    expect((await client.zRange(key('r3', 'instances'), 0, -1)).sort()).toEqual(['A', 'C']);
  });

  it('reports a swept share as lost, and a rewrite brings it back, naming what the others missed', async () => {
    const [a, b] = [store('A'), store('B')];
    await a.join('r4', 'a1', ada);
    await b.join('r4', 'b1', bob);
    t += LEASE_MS;
    expect((await a.renew('r4')).swept).toHaveLength(1);
    expect(await b.renew('r4')).toEqual({ lost: true, count: 0, swept: [] });
    expect(await b.leave('r4', 'none')).toBe(1); // not renewed by the lost beat
    const rewrite = await b.reconcile('r4', new Map([['b1', bob]]));
    expect(rewrite).toEqual({ count: 2, added: ['b1'], dropped: [], swept: [] });
    expect((await b.renew('r4')).lost).toBe(false);

    // A rewrite of a share that was not swept: only the differences.
    const next = await b.reconcile(
      'r4',
      new Map([
        ['b2', cy],
        ['b3', ada],
      ]),
    );
    expect({ ...next, added: [...next.added].sort() }).toEqual({
      count: 3,
      added: ['b2', 'b3'],
      dropped: [{ connectionId: 'b1', ...bob }],
      swept: [],
    });
    // An empty rewrite removes the share and the index entry.
    expect(await b.reconcile('r4', new Map())).toMatchObject({ count: 1, added: [] });
    expect(await client.exists(key('r4', 'B'))).toBe(0);
    expect(await client.zScore(key('r4', 'instances'), 'B')).toBeNull();
  });

  it('pages the members of every live instance, each listed once, and skips a dead share', async () => {
    const [a, b, c] = [store('A'), store('B'), store('C')];
    const names = new Set<string>();
    for (let i = 0; i < 7; i++) {
      const member = { name: `m${String(i)}`, guest: i % 2 === 0 };
      names.add(member.name);
      await [a, b][i % 2]!.join('r6', `c${String(i)}`, member);
    }
    // 300 in one share: a hash past Redis's small encoding, scanned in steps.
    for (let i = 0; i < 300; i++) {
      names.add(`big${String(i)}`);
      await b.join('r6', `big-${String(i)}`, { name: `big${String(i)}`, guest: false });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await c.members('r6', cursor, 40);
      expect(page.count).toBe(307);
      expect(page.members.length).toBeLessThanOrEqual(40);
      seen.push(...page.members.map((m) => m.name));
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined && pages < 100);
    expect(cursor).toBeUndefined();
    expect(seen.length).toBe(307);
    expect(new Set(seen)).toEqual(names);
    expect(seen.filter((n) => n === 'm0')).toHaveLength(1);
    // A's lease runs out (B renews): A's members are no longer listed.
    t += LEASE_MS - 1;
    await b.renew('r6');
    t += 1;
    const after = await c.members('r6', undefined, 100);
    expect(after.count).toBe(303);
    await expect(c.members('r6', 'no-dots', 10)).rejects.toMatchObject({ code: 'invalid_cursor' });
  });

  it('uses the server clock without one given, and loads its scripts again after SCRIPT FLUSH', async () => {
    const a = store('A', true);
    expect(await a.join('r5', 'a1', ada)).toEqual({ present: false, count: 1 });
    // The Redis under test runs on this machine: its clock is ours.
    const score = (await client.zScore(key('r5', 'instances'), 'A')) ?? 0;
    expect(Math.abs(score - (Date.now() + LEASE_MS))).toBeLessThan(2000);
    await client.scriptFlush();
    expect(await a.renew('r5')).toEqual({ lost: false, count: 0, swept: [] });
    expect(await a.leave('r5', 'a1')).toBe(0);
  });
});
