import { fireAndForget, type ErrorSink } from '../common/async/fire-and-forget.js';
import type { ChatPresenceStore, MembersPage, PresenceMember } from './chat-presence.store.js';
import { FrameError } from './chat.protocol.js';

/** A presence change, as the bus carries it and clients see it. */
export interface PresenceEvent {
  readonly kind: 'presence';
  readonly room: string;
  readonly event: 'joined' | 'left';
  readonly name: string;
  readonly guest: boolean;
  readonly count: number;
  /** On lefts a sweep announces: the dead instance the member was on (that instance, if alive after all, ignores them). */
  readonly sweptFrom?: string;
}

export interface ChatPresenceOptions {
  /** Undefined without Redis: counts are this instance's. */
  readonly store: ChatPresenceStore | undefined;
  /** Whether the store can be used now (Redis connected). */
  readonly ready: () => boolean;
  readonly leaseMs: number;
  /** To this instance's clients: the lefts of swept members. */
  readonly deliver: (event: PresenceEvent) => void;
  /** To the other instances. */
  readonly publish: (event: PresenceEvent) => void;
  /** Failures Redis may cause (rate-limited by the caller). */
  readonly warn: (message: string, error: unknown) => void;
  readonly logger: ErrorSink;
}

/** Cursors of this instance's own pages: `local.<offset>`. */
const LOCAL_CURSOR = /^local\.(\d{1,9})$/;
const isLocalCursor = (cursor: string | undefined): boolean => cursor?.startsWith('local.') === true;

/** Rooms whose share is out of date while Redis is away, beyond the rooms with local members; more lapse by lease. */
const MAX_DIRTY_ROOMS = 100_000;

/** Heartbeat period for a lease: a third of it, so two beats may be missed before it lapses. */
export function heartbeatIntervalMs(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}

/**
 * The counts of a series of presence changes that ends at `finalCount`, one
 * member at a time (each left one more before it, each join one less).
 */
export function stepCounts(finalCount: number, events: readonly ('joined' | 'left')[]): number[] {
  const counts = new Array<number>(events.length);
  let count = finalCount;
  for (let i = events.length - 1; i >= 0; i--) {
    counts[i] = Math.max(0, count);
    count += events[i] === 'left' ? 1 : -1;
  }
  return counts;
}

interface Change {
  readonly event: 'joined' | 'left';
  readonly member: PresenceMember;
  /** Swept from this dead instance: this instance's clients are told too. */
  readonly sweptFrom?: string;
}

/**
 * This instance's side of cross-instance presence: a mirror of its members,
 * the heartbeat that renews its share of each of their rooms every third of
 * the lease and sweeps dead instances' shares (announcing their members as
 * gone, once, by whichever instance claimed them), and the rewrite of shares
 * Redis missed (while it was away, or after this instance was swept itself).
 */
export class ChatPresence {
  /** Local members: room → connectionId → member. */
  private readonly members = new Map<string, Map<string, PresenceMember>>();
  /** Rooms whose share in the store may differ from the mirror: rewritten on the next beat. */
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: ChatPresenceOptions) {}

  /** Starts the heartbeat (no-op without a store). */
  start(): void {
    if (this.options.store === undefined || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      fireAndForget(this.beat(), this.options.logger, 'chat presence heartbeat');
    }, heartbeatIntervalMs(this.options.leaseMs));
    this.timer.unref();
  }

  /** After a (re)connect: every room's share is rewritten from the mirror. */
  async resync(): Promise<void> {
    for (const room of this.members.keys()) this.dirty.add(room);
    await this.beat();
  }

  /** Stops the heartbeat and removes this instance's share of every room at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const room of this.members.keys()) this.dirty.add(room);
    this.members.clear();
    await this.beat();
  }

  /** Records a member; returns the room's count across live instances (or `localCount` without the store). */
  async join(room: string, connectionId: string, member: PresenceMember, localCount: number): Promise<number> {
    if (this.stopped) return localCount;
    let local = this.members.get(room);
    if (local === undefined) {
      local = new Map();
      this.members.set(room, local);
    }
    local.set(connectionId, member);
    const store = this.usableStore(room);
    if (store === undefined) return localCount;
    try {
      if (this.dirty.has(room)) return await this.reconcile(room, connectionId);
      const { present, count } = await store.join(room, connectionId, member);
      // Local members were there before but the share was not: swept while alive, so rewritten.
      if (!present && (this.members.get(room)?.size ?? 0) > 1) return await this.reconcile(room, connectionId);
      return count;
    } catch (error) {
      this.markDirty(room);
      this.options.warn('chat presence update failed; counting this instance only', error);
      return localCount;
    }
  }

  /** Removes a member; returns the room's count. */
  async leave(room: string, connectionId: string, localCount: number): Promise<number> {
    if (this.stopped) return localCount;
    const local = this.members.get(room);
    local?.delete(connectionId);
    if (local?.size === 0) this.members.delete(room);
    const store = this.usableStore(room);
    if (store === undefined) return localCount;
    try {
      if (this.dirty.has(room)) return await this.reconcile(room, connectionId);
      return await store.leave(room, connectionId);
    } catch (error) {
      this.markDirty(room);
      this.options.warn('chat presence update failed; counting this instance only', error);
      return localCount;
    }
  }

  /**
   * A page of the room's members: across instances from the store, or this
   * instance's own (without Redis, or while it is away), paged by position.
   */
  async who(room: string, cursor: string | undefined, limit: number): Promise<MembersPage> {
    const store = this.options.store;
    if (store !== undefined && this.options.ready() && !this.dirty.has(room) && !isLocalCursor(cursor)) {
      return store.members(room, cursor, limit);
    }
    return this.localPage(room, cursor, limit);
  }

  private localPage(room: string, cursor: string | undefined, limit: number): MembersPage {
    const local = this.members.get(room);
    let offset = 0;
    if (cursor !== undefined) {
      const match = LOCAL_CURSOR.exec(cursor);
      if (match === null) throw new FrameError('invalid_cursor', 'cursor must be the cursor of a previous who answer');
      offset = Number(match[1]);
    }
    const members: PresenceMember[] = [];
    let i = 0;
    for (const member of local?.values() ?? []) {
      if (i++ < offset) continue;
      if (members.length === limit) break;
      members.push({ name: member.name, guest: member.guest });
    }
    const size = local?.size ?? 0;
    const next = offset + members.length;
    return { members, cursor: next < size ? `local.${String(next)}` : undefined, count: size };
  }

  /** One heartbeat; a beat asked for while one runs follows it (a resync must not be lost). */
  beat(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          await this.beatOnce();
        } while (this.takeAgain());
      } finally {
        this.running = undefined;
      }
    };
    this.running = run();
    return this.running;
  }

  private takeAgain(): boolean {
    const again = this.again;
    this.again = false;
    return again;
  }

  private async beatOnce(): Promise<void> {
    const store = this.options.store;
    if (store === undefined || !this.options.ready()) return;
    const rooms = new Set([...this.members.keys(), ...this.dirty]);
    // Issued in one tick: one pipelined write for all rooms.
    await Promise.all(
      [...rooms].map(async (room) => {
        try {
          if (this.dirty.has(room)) {
            await this.reconcile(room);
            return;
          }
          const { lost, count, swept } = await store.renew(room);
          this.announce(
            room,
            count,
            swept.map((m) => ({ event: 'left', member: m, sweptFrom: m.instance })),
          );
          if (lost && this.members.has(room)) {
            this.dirty.add(room);
            await this.reconcile(room);
          }
        } catch (error) {
          this.markDirty(room);
          this.options.warn('chat presence heartbeat failed', error);
        }
      }),
    );
  }

  /**
   * Rewrites this instance's share of a room from the mirror and tells the
   * other instances what they missed: members that joined or left meanwhile
   * (`except`, whose own join or leave is announced by the caller, aside).
   */
  private async reconcile(room: string, except?: string): Promise<number> {
    const store = this.options.store;
    if (store === undefined) throw new Error('no presence store');
    const local = new Map(this.members.get(room));
    this.dirty.delete(room);
    let result;
    try {
      result = await store.reconcile(room, local);
    } catch (error) {
      this.dirty.add(room);
      throw error;
    }
    const changes: Change[] = result.swept.map((m) => ({ event: 'left', member: m, sweptFrom: m.instance }));
    for (const m of result.dropped) if (m.connectionId !== except) changes.push({ event: 'left', member: m });
    for (const connectionId of result.added) {
      const member = local.get(connectionId);
      if (member !== undefined && connectionId !== except) changes.push({ event: 'joined', member });
    }
    this.announce(room, result.count, changes);
    return result.count;
  }

  /** Swept lefts go to this instance's clients and the others; the rest only to the others (local clients saw them). */
  private announce(room: string, finalCount: number, changes: readonly Change[]): void {
    const counts = stepCounts(
      finalCount,
      changes.map((c) => c.event),
    );
    changes.forEach(({ event, member, sweptFrom }, i) => {
      const presence: PresenceEvent = {
        kind: 'presence',
        room,
        event,
        name: member.name,
        guest: member.guest,
        count: counts[i] ?? finalCount,
        ...(sweptFrom === undefined ? {} : { sweptFrom }),
      };
      if (sweptFrom !== undefined) this.options.deliver(presence);
      this.options.publish(presence);
    });
  }

  /** The store if it can be used now; otherwise the room is marked for a rewrite once it can. */
  private usableStore(room: string): ChatPresenceStore | undefined {
    const store = this.options.store;
    if (store === undefined) return undefined;
    if (this.options.ready()) return store;
    this.markDirty(room);
    return undefined;
  }

  private markDirty(room: string): void {
    if (this.options.store === undefined) return;
    // Past the cap, a room without local members is left to lapse: its share expires with the lease.
    if (this.dirty.size >= MAX_DIRTY_ROOMS && !this.members.has(room)) return;
    this.dirty.add(room);
  }
}
