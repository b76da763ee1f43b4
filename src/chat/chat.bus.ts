import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { RedisClientType } from 'redis';
import { AppConfig } from '../config/app-config.js';
import { RedisConnection } from '../redis/redis.connection.js';
import type { ChatMessage } from './chat.protocol.js';

/** What instances tell each other: a stored message, or a presence change. */
export type ChatBusEvent =
  | { readonly kind: 'message'; readonly message: ChatMessage }
  | {
      readonly kind: 'presence';
      readonly room: string;
      readonly event: 'joined' | 'left';
      readonly name: string;
      readonly guest: boolean;
      readonly count: number;
    };

interface Envelope {
  readonly origin: string;
  readonly event: ChatBusEvent;
}

/** Presence hashes outlive a crashed instance by at most this long after the room's last join. */
const PRESENCE_TTL_S = 24 * 60 * 60;
/** Leaves remembered while Redis is away, to remove once it is back (beyond this, they are dropped). */
const MAX_PENDING_REMOVALS = 100_000;

/** A member of a room on this instance. */
export interface LocalMember {
  readonly room: string;
  readonly connectionId: string;
  readonly name: string;
}

/**
 * Fan-out between instances and cross-instance presence counts, through Redis
 * when REDIS_URL is set. Every published event carries this instance's id, and
 * an instance skips its own (it delivers locally first), so each client sees
 * each event once. Without Redis, or while it is away, everything is local:
 * nothing is published and counts are this instance's.
 */
@Injectable()
export class ChatBus {
  /** Unique per process start. */
  readonly instanceId = randomUUID();
  private readonly logger = new Logger(ChatBus.name);
  private readonly channel: string;
  private readonly presencePrefix: string;
  private subscriber: RedisClientType | undefined;
  private listener: ((event: ChatBusEvent) => void) | undefined;
  private localMembers: () => Iterable<LocalMember> = () => [];
  /** Presence fields to delete once Redis is back: leaves that happened while it was away. */
  private readonly pendingRemovals = new Map<string, Set<string>>();
  private pendingRemovalCount = 0;
  private subscribedFlag = false;

  constructor(
    private readonly redis: RedisConnection,
    config: AppConfig,
  ) {
    this.channel = `${config.redisKeyPrefix}chat:events`;
    this.presencePrefix = `${config.redisKeyPrefix}chat:presence:`;
  }

  /** True once this instance receives other instances' events. */
  get subscribed(): boolean {
    return this.subscribedFlag && (this.subscriber?.isReady ?? false);
  }

  /**
   * Starts receiving other instances' events (no-op without Redis). Each time
   * Redis (re)connects, this instance's presence there is brought back in line
   * with `localMembers` (joins and leaves it missed while away).
   */
  start(listener: (event: ChatBusEvent) => void, localMembers: () => Iterable<LocalMember>): void {
    this.listener = listener;
    this.localMembers = localMembers;
    const client = this.redis.client;
    if (client === undefined) return;
    client.on('ready', () => {
      this.resync(client).catch((error: unknown) => {
        this.warn('chat presence resync failed', error);
      });
    });
    // A connection in subscriber mode cannot run other commands: it needs its own.
    const subscriber = client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (error: unknown) => {
      this.warn('chat subscriber: redis unavailable', error);
    });
    void (async () => {
      try {
        await subscriber.connect();
        // node-redis re-subscribes by itself after a reconnect.
        await subscriber.subscribe(this.channel, (raw) => {
          this.receive(raw);
        });
        this.subscribedFlag = true;
      } catch (error) {
        this.warn('chat subscriber could not subscribe', error);
      }
    })();
  }

  async stop(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscribedFlag = false;
    if (subscriber === undefined) return;
    try {
      // A client still trying to (re)connect is destroyed: close() would wait for it.
      if (subscriber.isReady) await subscriber.close();
      else subscriber.destroy();
    } catch {
      subscriber.destroy();
    }
  }

  /** Tells the other instances (fire and forget: a Redis outage only loses cross-instance delivery). */
  publish(event: ChatBusEvent): void {
    const client = this.readyClient();
    if (client === undefined) return;
    const envelope: Envelope = { origin: this.instanceId, event };
    client.publish(this.channel, JSON.stringify(envelope)).catch((error: unknown) => {
      this.warn('chat publish failed', error);
    });
  }

  /**
   * Records a member of a room and returns the room's member count across all
   * instances (or `localCount` without Redis).
   */
  async join(room: string, connectionId: string, name: string, localCount: number): Promise<number> {
    const field = `${this.instanceId}:${connectionId}`;
    this.pendingRemovals.get(room)?.delete(field);
    const client = this.readyClient();
    if (client === undefined) return localCount;
    const key = this.presencePrefix + room;
    try {
      const [, , count] = await client.multi().hSet(key, field, name).expire(key, PRESENCE_TTL_S).hLen(key).exec();
      return typeof count === 'number' ? count : localCount;
    } catch (error) {
      this.warn('chat presence update failed; counting this instance only', error);
      return localCount;
    }
  }

  /** Removes a member of a room and returns the room's member count. */
  async leave(room: string, connectionId: string, localCount: number): Promise<number> {
    const field = `${this.instanceId}:${connectionId}`;
    const client = this.readyClient();
    if (client === undefined) {
      this.rememberRemoval(room, field);
      return localCount;
    }
    const key = this.presencePrefix + room;
    try {
      const [, count] = await client.multi().hDel(key, field).hLen(key).exec();
      return typeof count === 'number' ? count : localCount;
    } catch (error) {
      this.rememberRemoval(room, field);
      this.warn('chat presence update failed; counting this instance only', error);
      return localCount;
    }
  }

  private rememberRemoval(room: string, field: string): void {
    if (this.redis.client === undefined || this.pendingRemovalCount >= MAX_PENDING_REMOVALS) return;
    let fields = this.pendingRemovals.get(room);
    if (fields === undefined) {
      fields = new Set();
      this.pendingRemovals.set(room, fields);
    }
    if (!fields.has(field)) this.pendingRemovalCount++;
    fields.add(field);
  }

  /** Deletes the leaves Redis missed, then (re)writes every local member. */
  private async resync(client: RedisClientType): Promise<void> {
    const batch = client.multi();
    let commands = 0;
    for (const [room, fields] of this.pendingRemovals) {
      if (fields.size > 0) {
        batch.hDel(this.presencePrefix + room, [...fields]);
        commands++;
      }
    }
    this.pendingRemovals.clear();
    this.pendingRemovalCount = 0;
    for (const { room, connectionId, name } of this.localMembers()) {
      const key = this.presencePrefix + room;
      batch.hSet(key, `${this.instanceId}:${connectionId}`, name).expire(key, PRESENCE_TTL_S);
      commands++;
    }
    if (commands > 0) await batch.exec();
  }

  private readyClient(): RedisClientType | undefined {
    const client = this.redis.client;
    return client?.isReady === true ? client : undefined;
  }

  private receive(raw: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch {
      return;
    }
    // Our own events were delivered locally already.
    if (envelope.origin === this.instanceId) return;
    try {
      this.listener?.(envelope.event);
    } catch (error) {
      this.logger.error({ err: error }, 'chat bus listener failed');
    }
  }

  private warn(message: string, error: unknown): void {
    this.redis.reportFailure(this.logger, message, error);
  }
}
