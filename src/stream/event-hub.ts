import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { RedisClientType } from 'redis';
import { FanOut } from '../common/async/fan-out.js';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { DOMAIN_EVENT_TYPES, DomainEvents, type DomainEventType } from '../common/events/domain-events.js';
import { AppConfig } from '../config/app-config.js';
import { RedisConnection } from '../redis/redis.connection.js';

export interface HubEvent {
  /** Absent only for events delivered locally while Redis was unreachable (they cannot be resumed). */
  readonly id: string | undefined;
  readonly type: DomainEventType;
  readonly data: unknown;
  readonly ts: string;
}

export type Replay =
  | { readonly kind: 'events'; readonly events: readonly HubEvent[] }
  | { readonly kind: 'reset'; readonly oldestId: string | undefined };

type Listener = (event: HubEvent) => void;

// One counter for every instance, so event ids are the same small integers in
// every mode, and a gap in them shows exactly when a client missed something.
const APPEND_LUA = `
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[1], '*', 'seq', seq, 'type', ARGV[2], 'data', ARGV[3], 'ts', ARGV[4])
return seq`;

interface StreamEntry {
  readonly id: string;
  readonly message: Record<string, string>;
}

/**
 * Numbers every domain event and keeps the last EVENTS_REPLAY_SIZE for
 * Last-Event-ID resume. In one process the log is an in-memory ring; with
 * REDIS_URL it is a capped Redis stream that every instance appends to and
 * reads from, so /events shows every instance's events, once, and a client
 * can resume on any instance.
 */
@Injectable()
export class EventHub implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('EventHub');
  private readonly buffer: HubEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private readonly fanOut = new FanOut(this.logger);
  private nextId = 1;
  private unsubscribe: (() => void)[] = [];
  private reader: RedisClientType | undefined;
  private readerStop = false;
  private readerDone: Promise<void> = Promise.resolve();
  private readonly streamKey: string;

  constructor(
    private readonly events: DomainEvents,
    private readonly config: AppConfig,
    private readonly redis: RedisConnection,
  ) {
    this.streamKey = `${config.redisKeyPrefix}events`;
  }

  onModuleInit(): void {
    this.unsubscribe = DOMAIN_EVENT_TYPES.map((type) =>
      this.events.subscribe(type, (data) => this.publish(type, data)),
    );
    const client = this.redis.client;
    if (client !== undefined) {
      // Blocking reads need a connection of their own.
      this.reader = client.duplicate();
      this.reader.on('error', () => undefined);
      this.readerDone = this.readLoop(this.reader);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    for (const off of this.unsubscribe) off();
    this.readerStop = true;
    const reader = this.reader;
    if (reader !== undefined) {
      // Closing interrupts the blocking read.
      reader.destroy();
      await this.readerDone;
    }
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /**
   * Subscribes to live events and returns what a client that saw `lastId`
   * missed. Live events that arrive while the replay is read are held back
   * and delivered after it, without duplicates.
   */
  async resume(lastId: string | undefined, listener: Listener): Promise<{ replay: Replay; unsubscribe: () => void }> {
    const held: HubEvent[] = [];
    let replaying = true;
    let lastReplayed: string | undefined = undefined;
    const gate: Listener = (event) => {
      if (replaying) held.push(event);
      // A fan-out begun before the replay was read can reach this gate after it: no event twice.
      else if (lastReplayed === undefined || event.id === undefined || Number(event.id) > Number(lastReplayed)) {
        listener(event);
      }
    };
    this.listeners.add(gate);
    const unsubscribe = () => {
      this.listeners.delete(gate);
    };
    let replay: Replay = { kind: 'events', events: [] };
    try {
      if (lastId !== undefined) replay = await this.since(lastId);
    } catch (error) {
      this.redis.reportFailure(this.logger, 'event replay unavailable; client told to reset', error);
      replay = { kind: 'reset', oldestId: undefined };
    }
    lastReplayed = replay.kind === 'events' ? replay.events.at(-1)?.id : undefined;
    replaying = false;
    return {
      replay: {
        kind: replay.kind,
        ...(replay.kind === 'events'
          ? {
              events: [
                ...replay.events,
                ...held.filter(
                  (e) => lastReplayed === undefined || e.id === undefined || Number(e.id) > Number(lastReplayed),
                ),
              ],
            }
          : { oldestId: replay.oldestId }),
      } as Replay,
      unsubscribe,
    };
  }

  private publish(type: DomainEventType, data: unknown): void {
    const ts = new Date().toISOString();
    const client = this.redis.client;
    if (client === undefined) {
      this.deliverLocal({ id: String(this.nextId++), type, data, ts });
      return;
    }
    const append = client
      .eval(APPEND_LUA, {
        keys: [this.streamKey, `${this.streamKey}:seq`],
        arguments: [String(this.config.sse.replaySize), type, JSON.stringify(data), ts],
      })
      .catch((error: unknown) => {
        // Redis away: local subscribers still see it, without an id to resume from.
        this.redis.reportFailure(this.logger, 'event stream unavailable; delivering locally only', error);
        this.dispatch({ id: undefined, type, data, ts });
      });
    fireAndForget(append, this.logger, 'append event');
  }

  private deliverLocal(event: HubEvent): void {
    this.buffer.push(event);
    if (this.buffer.length > this.config.sse.replaySize) this.buffer.shift();
    this.dispatch(event);
  }

  /** To every subscriber, in slices that leave the event loop free between them (thousands of streams). */
  private dispatch(event: HubEvent): void {
    this.fanOut.run([...this.listeners], (listener) => {
      listener(event);
    });
  }

  private async since(lastId: string): Promise<Replay> {
    const client = this.redis.client;
    if (client === undefined) return this.pick(this.buffer, lastId);
    // The stream holds at most EVENTS_REPLAY_SIZE entries: read them all and pick by sequence.
    const entries = ((await client.xRange(this.streamKey, '-', '+')) as StreamEntry[]).map((e) => this.fromEntry(e));
    return this.pick(entries, lastId);
  }

  /** Events after lastId, or a reset when the one right after it is no longer kept. */
  private pick(kept: readonly HubEvent[], lastId: string): Replay {
    const last = Number(lastId);
    const oldest = kept[0]?.id;
    const newest = kept.at(-1)?.id;
    if (oldest === undefined || newest === undefined) return { kind: 'events', events: [] };
    if (last > Number(newest) || last < Number(oldest) - 1) return { kind: 'reset', oldestId: oldest };
    return { kind: 'events', events: kept.filter((e) => Number(e.id) > last) };
  }

  private async readLoop(reader: RedisClientType): Promise<void> {
    let lastId: string | undefined;
    while (!this.readerStop) {
      try {
        if (!reader.isOpen) await reader.connect();
        // Start after the newest entry that exists now ('$' would race with our own first append).
        if (lastId === undefined) {
          const [newest] = (await reader.xRevRange(this.streamKey, '+', '-', { COUNT: 1 })) as StreamEntry[];
          lastId = newest?.id ?? '0-0';
        }
        const reply = await reader.xRead({ key: this.streamKey, id: lastId }, { BLOCK: 1000, COUNT: 500 });
        for (const stream of reply ?? []) {
          for (const entry of stream.messages) {
            lastId = entry.id;
            this.dispatch(this.fromEntry(entry));
          }
        }
      } catch (error) {
        // Shutdown destroys the connection mid-read: that error is expected.
        if (this.isStopping()) return;
        this.redis.reportFailure(this.logger, 'event stream read failed; retrying', error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private isStopping(): boolean {
    return this.readerStop;
  }

  private fromEntry(entry: StreamEntry): HubEvent {
    const { seq, type, data, ts } = entry.message;
    return {
      id: seq,
      type: type as DomainEventType,
      data: data === undefined ? {} : (JSON.parse(data) as unknown),
      ts: ts ?? '',
    };
  }
}
