import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { RedisClientType } from 'redis';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { withTimeout } from '../common/async/with-timeout.js';
import { AppConfig } from '../config/app-config.js';
import { RedisConnection } from '../redis/redis.connection.js';
import type { MembersPage, PresenceMember } from './chat-presence.store.js';
import { ChatPresence, type PresenceEvent } from './chat.presence.js';
import type { ChatMessage } from './chat.protocol.js';
import { RedisChatPresenceStore } from './redis-chat-presence.store.js';

/** What instances tell each other: a stored message, or a presence change. */
export type ChatBusEvent = { readonly kind: 'message'; readonly message: ChatMessage } | PresenceEvent;

interface Envelope {
  readonly origin: string;
  readonly event: ChatBusEvent;
}

/** Longest wait, at shutdown, for this instance's presence to be removed from Redis. */
const STOP_PRESENCE_WAIT_MS = 1000;

/**
 * Fan-out between instances and cross-instance presence counts, through Redis
 * when REDIS_URL is set. Every published event carries this instance's id, and
 * an instance skips its own (it delivers locally first), so each client sees
 * each event once. Without Redis, or while it is away, everything is local:
 * nothing is published and counts are this instance's. Presence is leased
 * ({@link ChatPresence}): a crashed instance's members leave every count
 * within `CHAT_PRESENCE_TTL_S`.
 */
@Injectable()
export class ChatBus {
  /** Unique per process start. */
  readonly instanceId = randomUUID();
  private readonly logger = new Logger(ChatBus.name);
  private readonly channel: string;
  private readonly presence: ChatPresence;
  private subscriber: RedisClientType | undefined;
  private listener: ((event: ChatBusEvent) => void) | undefined;
  private onReady: (() => void) | undefined;
  private subscribedFlag = false;

  constructor(
    private readonly redis: RedisConnection,
    config: AppConfig,
  ) {
    this.channel = `${config.redisKeyPrefix}chat:events`;
    const client = redis.client;
    const leaseMs = config.chat.presenceTtlS * 1000;
    this.presence = new ChatPresence({
      store:
        client === undefined
          ? undefined
          : new RedisChatPresenceStore(client, {
              keyPrefix: config.redisKeyPrefix,
              instanceId: this.instanceId,
              leaseMs,
            }),
      ready: () => this.readyClient() !== undefined,
      leaseMs,
      deliver: (event) => {
        this.deliver(event);
      },
      publish: (event) => {
        this.publish(event);
      },
      warn: (message, error) => {
        this.warn(message, error);
      },
      logger: this.logger,
    });
  }

  /** True once this instance receives other instances' events. */
  get subscribed(): boolean {
    return this.subscribedFlag && (this.subscriber?.isReady ?? false);
  }

  /**
   * Starts receiving other instances' events and the presence heartbeat (no-op
   * without Redis). Each time Redis (re)connects, this instance's presence
   * there is brought back in line with its members (joins and leaves it missed
   * while away, told to the other instances), and `onReady` is called: what
   * this instance kept of other instances' events may have gaps now.
   */
  start(listener: (event: ChatBusEvent) => void, onReady?: () => void): void {
    this.listener = listener;
    this.onReady = onReady;
    const client = this.redis.client;
    if (client === undefined) return;
    client.on('ready', () => {
      fireAndForget(this.presence.resync(), this.logger, 'chat presence resync');
      this.onReady?.();
    });
    this.presence.start();
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

  /** Removes this instance's presence from Redis (bounded), then stops receiving. */
  async stop(): Promise<void> {
    try {
      await withTimeout(this.presence.stop(), STOP_PRESENCE_WAIT_MS, 'chat presence removal');
    } catch (error) {
      this.warn('chat presence could not be removed; it lapses with its lease', error);
    }
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
   * live instances (or `localCount` without Redis, or while it is away).
   */
  async join(room: string, connectionId: string, member: PresenceMember, localCount: number): Promise<number> {
    return this.presence.join(room, connectionId, member, localCount);
  }

  /** Removes a member of a room and returns the room's member count. */
  async leave(room: string, connectionId: string, localCount: number): Promise<number> {
    return this.presence.leave(room, connectionId, localCount);
  }

  /** A page of who is in a room, across instances when Redis is there. */
  async who(room: string, cursor: string | undefined, limit: number): Promise<MembersPage> {
    return this.presence.who(room, cursor, limit);
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
    const event = envelope.event;
    // Swept while alive (stalled past the lease): our members are still here, and the rewrite of our share says so.
    if (event.kind === 'presence' && event.sweptFrom === this.instanceId) return;
    this.deliver(event);
  }

  private deliver(event: ChatBusEvent): void {
    try {
      this.listener?.(event);
    } catch (error) {
      this.logger.error({ err: error }, 'chat bus listener failed');
    }
  }

  private warn(message: string, error: unknown): void {
    this.redis.reportFailure(this.logger, message, error);
  }
}
