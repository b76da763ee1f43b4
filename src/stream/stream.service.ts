import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { FanOut } from '../common/async/fan-out.js';
import type { FastifyReply } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAdmin, type Caller } from '../auth/caller.js';
import { AppConfig } from '../config/app-config.js';
import { EventHub, type HubEvent } from './event-hub.js';
import { isEventId } from './event-id.js';
import { encodeSse, SseChunk, SseConnection } from './sse-connection.js';
import { StreamMetrics } from './stream.metrics.js';

const RETRY_HINT_MS = 3000;
const KEEPALIVE = SseChunk.of(': keepalive\n\n');

/** Each event's wire form, encoded on its first delivery and shared by every subscriber after. */
const encoded = new WeakMap<HubEvent, SseChunk>();

export function encodeEvent(event: HubEvent): SseChunk {
  let chunk = encoded.get(event);
  if (chunk === undefined) {
    const data = JSON.stringify({ ...(event.data as object), ts: event.ts });
    chunk = SseChunk.of(encodeSse({ ...(event.id === undefined ? {} : { id: event.id }), event: event.type, data }));
    encoded.set(event, chunk);
  }
  return chunk;
}

/** Whether `caller` may see `event`: notification events only by who asked for them (and admins). */
export function maySee(event: HubEvent, caller: Caller | undefined): boolean {
  if (!event.type.startsWith('notification.')) return true;
  if (caller === undefined) return false;
  return isAdmin(caller) || (event.data as { requestedBy?: unknown } | null)?.requestedBy === caller.sub;
}

/**
 * Serves the finite demo stream and the live /events stream over SSE. One
 * timer sends every live stream its keepalive; each event is encoded once
 * for all its subscribers.
 */
@Injectable()
export class StreamService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly open = new Set<SseConnection>();
  /** The live /events streams, which get keepalives. */
  private readonly live = new Set<SseConnection>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly keepalives = new FanOut(new Logger(StreamService.name));

  constructor(
    private readonly hub: EventHub,
    private readonly config: AppConfig,
    private readonly metrics: StreamMetrics,
  ) {}

  onModuleInit(): void {
    this.heartbeat = setInterval(() => {
      // In slices, like events: thousands of streams must not hold the event loop at once.
      // Only idle streams: one that carried an event since the last round is kept open by it.
      const idle: SseConnection[] = [];
      for (const connection of this.live) {
        if (connection.wroteSinceKeepalive) connection.wroteSinceKeepalive = false;
        else idle.push(connection);
      }
      this.keepalives.run(idle, (connection) => connection.sendEncoded(KEEPALIVE));
    }, this.config.sse.heartbeatMs);
    this.heartbeat.unref();
  }

  /** `count` items `{item, value}` every `intervalMs`, then the stream ends. */
  async finite(reply: FastifyReply, count: number, intervalMs: number): Promise<void> {
    const connection = this.connect(reply);
    const stop = new AbortController();
    connection.onClose(() => {
      stop.abort();
    });
    try {
      for (let i = 0; i < count && connection.isOpen; i++) {
        if (i > 0 && intervalMs > 0) await sleep(intervalMs, undefined, { signal: stop.signal });
        if (!connection.send({ id: String(i), data: JSON.stringify({ item: i, value: `data_${String(i)}` }) })) break;
        this.metrics.eventsSent.inc();
        // With no interval, pace by the socket instead of buffering the whole stream.
        await connection.drained();
      }
    } catch (error) {
      if (!stop.signal.aborted) throw error;
    } finally {
      connection.end();
    }
  }

  /**
   * The live domain-event stream, resuming after `lastEventId` from the replay
   * buffer; `caller`'s own notification events only.
   */
  async events(
    reply: FastifyReply,
    types: ReadonlySet<string> | undefined,
    lastEventId: string | undefined,
    caller: Caller | undefined,
  ): Promise<void> {
    const connection = this.connect(reply);
    connection.retry(RETRY_HINT_MS);
    const deliver = (event: HubEvent) => {
      if ((types !== undefined && !types.has(event.type)) || !maySee(event, caller)) return;
      if (connection.sendEncoded(encodeEvent(event))) this.metrics.eventsSent.inc();
    };
    // An id that is not one of ours cannot be resumed from: the client gets a reset.
    const valid = lastEventId === undefined || isEventId(lastEventId);
    const { replay, unsubscribe } = await this.hub.resume(valid ? lastEventId : undefined, deliver);
    connection.onClose(unsubscribe);
    if (!valid || replay.kind === 'reset') {
      connection.send({
        event: 'reset',
        data: JSON.stringify({
          reason: 'Last-Event-ID cannot be resumed from (older than the replay buffer, or unknown)',
          oldestId: replay.kind === 'reset' ? replay.oldestId : undefined,
        }),
      });
    }
    if (replay.kind === 'events') {
      for (const event of replay.events) deliver(event);
      this.metrics.replayed.inc(replay.events.length);
    }
    if (connection.isOpen) {
      this.live.add(connection);
      connection.onClose(() => this.live.delete(connection));
    }
  }

  /** Ends every open stream so shutdown is not held up by clients that never hang up. */
  beforeApplicationShutdown(): void {
    clearInterval(this.heartbeat);
    for (const connection of this.open) connection.end();
  }

  private connect(reply: FastifyReply): SseConnection {
    // Nest and Fastify step aside: the stream writes to the raw response from here on.
    reply.hijack();
    const headers = Object.fromEntries(
      Object.entries(reply.getHeaders()).flatMap(([k, v]) =>
        v === undefined ? [] : [[k, Array.isArray(v) ? v.join(', ') : String(v)]],
      ),
    );
    const connection = new SseConnection(reply.raw, this.config.sse.maxBufferBytes, () => this.metrics.dropped.inc());
    connection.open(headers);
    this.open.add(connection);
    this.metrics.subscribers.inc();
    connection.onClose(() => {
      this.open.delete(connection);
      this.metrics.subscribers.dec();
    });
    return connection;
  }
}
