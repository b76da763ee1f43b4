import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  ChatPresenceStore,
  type JoinResult,
  type MembersPage,
  type PresenceMember,
  type ReconcileResult,
  type RenewResult,
  type SweptMember,
} from './chat-presence.store.js';
import { ChatPresence, heartbeatIntervalMs, stepCounts, type PresenceEvent } from './chat.presence.js';

const LEASE_MS = 3000;

interface Share {
  expiresAt: number;
  readonly members: Map<string, PresenceMember>;
}

/** What Redis holds for every instance: room → instance → share (index entry and hash as one). */
class World {
  readonly rooms = new Map<string, Map<string, Share>>();

  room(room: string): Map<string, Share> {
    let shares = this.rooms.get(room);
    if (shares === undefined) {
      shares = new Map();
      this.rooms.set(room, shares);
    }
    return shares;
  }

  count(room: string, now = Date.now()): number {
    let n = 0;
    for (const share of this.room(room).values()) if (share.expiresAt > now) n += share.members.size;
    return n;
  }
}

/** The Lua scripts' semantics in memory, on the fake clock; `down` makes every call fail as Redis would. */
class MemoryStore extends ChatPresenceStore {
  down = false;
  readonly calls: string[] = [];

  constructor(
    private readonly world: World,
    readonly instance: string,
  ) {
    super();
  }

  async join(room: string, connectionId: string, member: PresenceMember): Promise<JoinResult> {
    const shares = this.enter('join', room);
    const present = shares.has(this.instance);
    const share = shares.get(this.instance) ?? { expiresAt: 0, members: new Map() };
    shares.set(this.instance, share);
    share.members.set(connectionId, member);
    share.expiresAt = Date.now() + LEASE_MS;
    return Promise.resolve({ present, count: this.world.count(room) });
  }

  async leave(room: string, connectionId: string): Promise<number> {
    const shares = this.enter('leave', room);
    const share = shares.get(this.instance);
    share?.members.delete(connectionId);
    if (share?.members.size === 0) shares.delete(this.instance);
    return Promise.resolve(this.world.count(room));
  }

  async renew(room: string): Promise<RenewResult> {
    const shares = this.enter('renew', room);
    const share = shares.get(this.instance);
    if (share !== undefined) share.expiresAt = Date.now() + LEASE_MS;
    const swept = this.sweep(shares);
    return Promise.resolve({ lost: share === undefined, swept, count: this.world.count(room) });
  }

  async reconcile(room: string, members: ReadonlyMap<string, PresenceMember>): Promise<ReconcileResult> {
    const shares = this.enter('reconcile', room);
    const old = shares.get(this.instance)?.members ?? new Map<string, PresenceMember>();
    if (members.size === 0) shares.delete(this.instance);
    else shares.set(this.instance, { expiresAt: Date.now() + LEASE_MS, members: new Map(members) });
    const added = [...members.keys()].filter((id) => !old.has(id));
    const dropped = [...old].filter(([id]) => !members.has(id)).map(([connectionId, m]) => ({ connectionId, ...m }));
    const swept = this.sweep(shares);
    return Promise.resolve({ count: this.world.count(room), added, dropped, swept });
  }

  /** Pages by position over the live shares in instance order (the scripts walk them the same way). */
  async members(room: string, cursor: string | undefined, limit: number): Promise<MembersPage> {
    const shares = this.enter('members', room);
    const live = [...shares].filter(([, s]) => s.expiresAt > Date.now()).sort(([a], [b]) => a.localeCompare(b));
    const all = live.flatMap(([, s]) => [...s.members.values()]);
    const offset = cursor === undefined ? 0 : Number(cursor);
    const members = all.slice(offset, offset + limit);
    const next = offset + members.length;
    return Promise.resolve({ members, cursor: next < all.length ? String(next) : undefined, count: all.length });
  }

  private enter(call: string, room: string): Map<string, Share> {
    this.calls.push(`${call} ${room}`);
    if (this.down) throw new Error('ECONNREFUSED');
    return this.world.room(room);
  }

  private sweep(shares: Map<string, Share>): SweptMember[] {
    const swept: SweptMember[] = [];
    for (const [instance, share] of shares) {
      if (instance === this.instance || share.expiresAt > Date.now()) continue;
      for (const [connectionId, m] of share.members) swept.push({ instance, connectionId, ...m });
      shares.delete(instance);
    }
    return swept;
  }
}

interface Node {
  readonly presence: ChatPresence;
  readonly store: MemoryStore;
  readonly delivered: PresenceEvent[];
  readonly published: PresenceEvent[];
  ready: boolean;
}

function node(world: World, instance: string): Node {
  const store = new MemoryStore(world, instance);
  const delivered: PresenceEvent[] = [];
  const published: PresenceEvent[] = [];
  const n: Node = {
    store,
    delivered,
    published,
    ready: true,
    presence: new ChatPresence({
      store,
      ready: () => n.ready,
      leaseMs: LEASE_MS,
      deliver: (e) => delivered.push(e),
      publish: (e) => published.push(e),
      warn: () => undefined,
      logger: { error: () => undefined },
    }),
  };
  n.presence.start();
  return n;
}

const ada: PresenceMember = { name: 'ada', guest: false };
const bob: PresenceMember = { name: 'bob', guest: false };
const cy: PresenceMember = { name: 'guest-c0ffee', guest: true };
const lefts = (events: PresenceEvent[]) => events.filter((e) => e.event === 'left');

describe('presence timing', () => {
  it('beats every third of the lease', () => {
    expect(heartbeatIntervalMs(15_000)).toBe(5000);
    expect(heartbeatIntervalMs(3000)).toBe(1000);
  });

  it('steps counts one member at a time towards the final count', () => {
    expect(stepCounts(1, ['left', 'left'])).toEqual([2, 1]);
    expect(stepCounts(3, ['left', 'joined', 'joined'])).toEqual([1, 2, 3]);
    expect(stepCounts(0, [])).toEqual([]);
  });
});

describe('ChatPresence', () => {
  let world: World;
  const nodes: Node[] = [];
  const add = (instance: string) => {
    const n = node(world, instance);
    nodes.push(n);
    return n;
  };
  /** A with ada and B with bob in room r. */
  const pair = async (): Promise<[Node, Node]> => {
    const a = add('A');
    const b = add('B');
    await a.presence.join('r', 'a1', ada, 1);
    await b.presence.join('r', 'b1', bob, 1);
    return [a, b];
  };

  beforeEach(() => {
    jest.useFakeTimers();
    world = new World();
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) {
      n.store.down = false;
      await n.presence.stop();
    }
    expect(jest.getTimerCount()).toBe(0);
    jest.useRealTimers();
  });

  it('counts the members of live instances; a crashed instance is swept once, by one survivor, within the lease', async () => {
    const a = add('A');
    const b = add('B');
    const c = add('C');
    expect(await a.presence.join('r', 'a1', ada, 1)).toBe(1);
    expect(await b.presence.join('r', 'b1', bob, 1)).toBe(2);
    expect(await b.presence.join('r', 'b2', cy, 2)).toBe(3);
    expect(await c.presence.join('r', 'c1', ada, 1)).toBe(4);
    await jest.advanceTimersByTimeAsync(LEASE_MS); // several beats: leases renewed, nothing swept
    expect(world.count('r')).toBe(4);
    expect([...a.delivered, ...c.delivered]).toEqual([]);

    b.store.down = true; // SIGKILL: no more beats reach the store, nothing removed
    const crashedAt = Date.now();
    while (world.count('r') > 2) await jest.advanceTimersByTimeAsync(100);
    expect(Date.now() - crashedAt).toBeLessThanOrEqual(LEASE_MS);
    await jest.advanceTimersByTimeAsync(heartbeatIntervalMs(LEASE_MS));

    const sweeper = a.delivered.length > 0 ? a : c;
    const other = sweeper === a ? c : a;
    expect(sweeper.delivered).toEqual([
      { kind: 'presence', room: 'r', event: 'left', name: 'bob', guest: false, count: 3, sweptFrom: 'B' },
      { kind: 'presence', room: 'r', event: 'left', name: 'guest-c0ffee', guest: true, count: 2, sweptFrom: 'B' },
    ]);
    // The same events go to the other instances through the bus; none announced twice.
    expect(sweeper.published).toEqual(sweeper.delivered);
    expect(other.delivered).toEqual([]);
    expect(other.published).toEqual([]);
    expect(await other.presence.join('r', 'x', bob, 2)).toBe(3);
  });

  it('renews only the rooms with local members, all in one tick', async () => {
    const a = add('A');
    await a.presence.join('r1', 'a1', ada, 1);
    await a.presence.join('r2', 'a1', ada, 1);
    await a.presence.join('r3', 'a2', bob, 1);
    await a.presence.leave('r3', 'a2', 0);
    a.store.calls.length = 0;
    jest.advanceTimersByTime(heartbeatIntervalMs(LEASE_MS)); // synchronous: the calls of one beat, issued together
    expect(a.store.calls.sort()).toEqual(['renew r1', 'renew r2']);
  });

  it('counts this instance only while Redis is away, then rewrites its share and tells the others what they missed', async () => {
    const [, b] = await pair();
    b.ready = false;
    expect(await b.presence.join('r', 'b2', cy, 2)).toBe(2);
    expect(await b.presence.leave('r', 'b1', 1)).toBe(1);
    expect(b.store.calls).toEqual(['join r']); // nothing tried while away
    b.ready = true;
    await b.presence.resync();
    expect(world.count('r')).toBe(2);
    expect(b.published).toEqual([
      { kind: 'presence', room: 'r', event: 'left', name: 'bob', guest: false, count: 1 },
      { kind: 'presence', room: 'r', event: 'joined', name: 'guest-c0ffee', guest: true, count: 2 },
    ]);
    expect(b.delivered).toEqual([]);
  });

  it('rewrites a share swept while its instance was alive but stalled, announcing its members again', async () => {
    const [a, b] = await pair();
    b.store.down = true;
    await jest.advanceTimersByTimeAsync(LEASE_MS + heartbeatIntervalMs(LEASE_MS));
    expect(a.delivered).toMatchObject([{ event: 'left', name: 'bob', count: 1, sweptFrom: 'B' }]);
    b.store.down = false;
    await jest.advanceTimersByTimeAsync(heartbeatIntervalMs(LEASE_MS));
    expect(world.count('r')).toBe(2);
    expect(b.published).toEqual([
      { kind: 'presence', room: 'r', event: 'joined', name: 'bob', guest: false, count: 2 },
    ]);
  });

  it('rewrites the whole share when a join finds it swept, announcing all but the joiner', async () => {
    const [, b] = await pair();
    world.room('r').delete('B'); // swept between two beats of B
    expect(await b.presence.join('r', 'b2', cy, 2)).toBe(3);
    expect(b.published).toEqual([
      { kind: 'presence', room: 'r', event: 'joined', name: 'bob', guest: false, count: 3 },
    ]);
  });

  it('removes its share at once on stop and clears its heartbeat', async () => {
    const [, b] = await pair();
    await b.presence.join('r', 'b2', cy, 2);
    await b.presence.leave('r', 'b2', 1);
    nodes.splice(nodes.indexOf(b), 1);
    await b.presence.stop();
    expect(world.count('r')).toBe(1);
    // b1 never left through the service (its close outlived the shutdown wait): announced here.
    expect(lefts(b.published)).toEqual([
      { kind: 'presence', room: 'r', event: 'left', name: 'bob', guest: false, count: 1 },
    ]);
    expect(await b.presence.join('r', 'b3', bob, 1)).toBe(1);
    b.store.calls.length = 0;
    await jest.advanceTimersByTimeAsync(LEASE_MS);
    expect(b.store.calls).toEqual([]);
  });

  it('has no store and no timer without Redis', async () => {
    const presence = new ChatPresence({
      store: undefined,
      ready: () => false,
      leaseMs: LEASE_MS,
      deliver: () => undefined,
      publish: () => undefined,
      warn: () => undefined,
      logger: { error: () => undefined },
    });
    presence.start();
    expect(jest.getTimerCount()).toBe(0);
    expect(await presence.join('r', 'a1', ada, 7)).toBe(7);
    await presence.stop();
  });

  it('pages who from the store across instances, and from its own members while Redis is away', async () => {
    const [a, b] = await pair();
    await a.presence.join('r', 'a2', cy, 2);
    const first = await a.presence.who('r', undefined, 2);
    expect(first).toMatchObject({ count: 3, members: [ada, cy] });
    expect(await a.presence.who('r', first.cursor, 2)).toEqual({ count: 3, members: [bob], cursor: undefined });
    a.ready = false;
    const own = await a.presence.who('r', undefined, 1);
    expect(own).toEqual({ count: 2, members: [ada], cursor: 'local.1' });
    // A walk begun on this instance's own members goes on there, even once Redis is back.
    a.ready = true;
    expect(await a.presence.who('r', own.cursor, 5)).toEqual({ count: 2, members: [cy], cursor: undefined });
    await expect(a.presence.who('r', 'local.x', 5)).rejects.toMatchObject({ code: 'invalid_cursor' });
    expect(await b.presence.who('empty', undefined, 5)).toMatchObject({ count: 0, members: [] });
  });
});
