import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { Caller } from '../auth/caller.js';
import { AppException } from '../common/errors/app.exception.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { ShutdownState } from '../common/lifecycle/shutdown-state.js';
import { AppConfig } from '../config/app-config.js';
import { isDatabaseUnavailable } from '../database/database.errors.js';
import { LocalTokenBucketStore } from '../resilience/rate-limiter.js';
import { ChatBus, type ChatBusEvent } from './chat.bus.js';
import { chatIdentity, type ChatIdentity } from './chat.identity.js';
import { ChatMessagesRepository } from './chat-messages.repository.js';
import { ChatMetrics } from './chat.metrics.js';
import {
  CATCH_UP_LIMIT,
  errorFrame,
  FrameError,
  HISTORY_SIZE,
  LOBBY,
  MAX_ROOMS_PER_CONNECTION,
  messageFrame,
  parseClientFrame,
  type ChatErrorCode,
  type ChatMessage,
  type ClientFrame,
  type ServerFrame,
} from './chat.protocol.js';

/** WebSocket close codes the chat uses. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN_LATER = 1013;
/** How long a stored message may take to reach another instance's clients live (clock skew included). */
const IN_FLIGHT_WINDOW_MS = 30_000;

/** Policy violation: the connection's token expired. */
export const CLOSE_POLICY_VIOLATION = 1008;
export const TOKEN_EXPIRED_REASON = 'token_expired';
/** setTimeout's longest delay (about 24.8 days); a longer-lived token is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long shutdown waits for clients to complete the close handshake. */
const SHUTDOWN_CLOSE_WAIT_MS = 1000;
/** How long a slow client gets to take its 1013 close frame before its socket is destroyed. */
const SLOW_CLIENT_KILL_MS = 1000;

interface Membership {
  /** Frames held back while the join's history is loading; undefined once live. */
  pending: string[] | undefined;
  /** Ids of messages held back, parallel to `pending` (undefined for other frames). */
  pendingIds: (number | undefined)[];
  /**
   * Recent messages the join's history held: one stored just before the history
   * was read can still arrive live after it (from another instance, or from this
   * one's store), and that copy is dropped once.
   */
  inHistory?: Set<number>;
}

interface Connection {
  readonly id: string;
  readonly ws: WebSocket;
  readonly rooms: Map<string, Membership>;
  /** Who the connection is, fixed at the upgrade. */
  readonly identity: ChatIdentity;
  /** Closes the connection when its token expires; cleared on close. */
  expiry: NodeJS.Timeout | undefined;
  everJoined: boolean;
  alive: boolean;
  /** Closed, closing, or being dropped: nothing more is sent or handled. */
  done: boolean;
  /** Frames of one connection are handled one after another, in order. */
  queue: Promise<void>;
}

/**
 * The chat: connections, rooms, the protocol's handlers, heartbeats and
 * back-pressure. Messages go to PostgreSQL first, then to local members and,
 * through {@link ChatBus}, to other instances.
 */
@Injectable()
export class ChatService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(ChatService.name);
  private readonly connections = new Map<string, Connection>();
  /** Local members of each room. */
  private readonly rooms = new Map<string, Map<string, Connection>>();
  private readonly buckets: LocalTokenBucketStore;
  private readonly background = new Set<Promise<unknown>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private shuttingDown = false;

  constructor(
    private readonly config: AppConfig,
    private readonly repository: ChatMessagesRepository,
    private readonly bus: ChatBus,
    private readonly metrics: ChatMetrics,
    private readonly events: DomainEvents,
    private readonly shutdownState: ShutdownState,
  ) {
    this.buckets = new LocalTokenBucketStore({
      ratePerSec: config.chat.ratePerSec,
      capacity: config.chat.rateBurst,
    });
  }

  onModuleInit(): void {
    this.bus.start((event) => {
      this.onRemote(event);
    });
    this.heartbeat = setInterval(() => {
      this.beat();
    }, this.config.chat.pingIntervalMs);
    this.heartbeat.unref();
  }

  /** Local connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Takes over a freshly upgraded WebSocket, as the caller its upgrade was verified as (undefined: a guest). */
  accept(ws: WebSocket, caller: Caller | undefined): void {
    if (this.shuttingDown || this.shutdownState.draining) {
      ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      return;
    }
    const identity = chatIdentity(caller, this.config.chat.guests);
    const conn: Connection = {
      id: randomUUID(),
      ws,
      rooms: new Map(),
      identity,
      expiry: undefined,
      everJoined: false,
      alive: true,
      done: false,
      queue: Promise.resolve(),
    };
    this.connections.set(conn.id, conn);
    this.metrics.connections.set(this.connections.size);
    ws.on('message', (data: RawData) => {
      this.onFrame(conn, data);
    });
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.once('close', () => {
      clearTimeout(conn.expiry);
      this.track(this.disconnect(conn));
    });
    this.send(conn, {
      type: 'welcome',
      name: identity.name,
      guest: identity.guest,
      canPost: identity.refusal === undefined,
    });
    this.scheduleExpiry(conn);
  }

  /**
   * Closes the connection (1008 token_expired) once its token is no longer
   * valid: at `exp` plus the clock tolerance the verifier grants, so a
   * reconnect with the same token is refused rather than accepted and closed.
   */
  private scheduleExpiry(conn: Connection): void {
    const expiresAt = conn.identity.expiresAt;
    if (expiresAt === undefined) return;
    const deadline = expiresAt + this.config.auth.clockToleranceS * 1000;
    const arm = (): void => {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.expire(conn);
        return;
      }
      conn.expiry = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      conn.expiry.unref();
    };
    arm();
  }

  private expire(conn: Connection): void {
    conn.expiry = undefined;
    if (conn.done) return;
    conn.done = true;
    this.metrics.tokensExpired.inc();
    conn.ws.close(CLOSE_POLICY_VIOLATION, TOKEN_EXPIRED_REASON);
    // A peer that never completes the close handshake is cut off, like a slow one.
    setTimeout(() => {
      if (conn.ws.readyState !== WebSocket.CLOSED) conn.ws.terminate();
    }, SLOW_CLIENT_KILL_MS).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    const open = [...this.connections.values()];
    const closed = open.map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === WebSocket.CLOSED) {
            resolve();
            return;
          }
          conn.ws.once('close', () => {
            resolve();
          });
          conn.done = true;
          conn.ws.close(CLOSE_GOING_AWAY, 'server shutting down');
        }),
    );
    await this.within(Promise.all(closed), SHUTDOWN_CLOSE_WAIT_MS);
    for (const conn of open) {
      if (conn.ws.readyState !== WebSocket.CLOSED) conn.ws.terminate();
    }
    // Presence updates and stores still in flight (bounded).
    await this.within(Promise.allSettled([...this.background, ...open.map((c) => c.queue)]), SHUTDOWN_CLOSE_WAIT_MS);
    await this.bus.stop();
  }

  private onFrame(conn: Connection, data: RawData): void {
    if (conn.done) return;
    this.metrics.framesIn.inc();
    if (!this.buckets.takeSync(conn.id).allowed) {
      this.sendError(conn, 'rate_limited', 'too many frames; slow down');
      return;
    }
    let frame: ClientFrame;
    try {
      frame = parseClientFrame(rawText(data));
    } catch (error) {
      if (error instanceof FrameError) this.sendError(conn, error.code, error.message);
      else this.sendError(conn, 'internal_error', 'the frame could not be handled');
      return;
    }
    conn.queue = conn.queue.then(async () => {
      if (conn.done) return;
      try {
        await this.handle(conn, frame);
      } catch (error) {
        if (error instanceof FrameError) {
          this.sendError(conn, error.code, error.message);
        } else if (
          (error instanceof AppException && error.code === 'database_unavailable') ||
          // A driver error that no repository translated is still an outage, not a bug.
          isDatabaseUnavailable(error)
        ) {
          this.sendError(conn, 'unavailable', 'storage is unavailable; try again shortly');
        } else {
          this.logger.error({ err: error, frameType: frame.type }, 'chat frame failed');
          this.sendError(conn, 'internal_error', 'the frame could not be handled');
        }
      }
    });
  }

  private async handle(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'join':
        await this.join(conn, frame.room, frame.since);
        return;
      case 'leave':
        await this.leave(conn, frame.room);
        return;
      case 'message':
        await this.message(conn, frame.room, frame.text, frame.clientMsgId);
        return;
    }
  }

  private async join(conn: Connection, room: string, since: number | undefined) {
    const existing = conn.rooms.get(room);
    if (existing !== undefined) {
      // Already a member: only the history is sent again.
      this.sendHistory(conn, room, ...(await this.history(room, since)));
      return;
    }
    if (conn.rooms.size >= MAX_ROOMS_PER_CONNECTION) {
      throw new FrameError(
        'too_many_rooms',
        `a connection may be in at most ${String(MAX_ROOMS_PER_CONNECTION)} rooms`,
      );
    }
    // The frame's name is ignored: a connection is who its token says, or its guest name.
    const { name, guest } = conn.identity;
    // Member first (live frames held back), then history: nothing falls in between.
    const membership: Membership = { pending: [], pendingIds: [] };
    conn.rooms.set(room, membership);
    this.addLocal(room, conn);
    let count: number;
    let messages: ChatMessage[];
    let truncated: boolean;
    try {
      count = await this.bus.join(room, conn.id, { name, guest }, this.localCount(room));
      [messages, truncated] = await this.history(room, since);
    } catch (error) {
      conn.rooms.delete(room);
      this.removeLocal(room, conn);
      await this.bus.leave(room, conn.id, this.localCount(room));
      throw error;
    }
    conn.everJoined = true;
    if (conn.done) return;
    this.sendHistory(conn, room, messages, truncated);
    const recent = Date.now() - IN_FLIGHT_WINDOW_MS;
    const inFlight = messages.filter((m) => Date.parse(m.ts) >= recent).map((m) => m.id);
    if (inFlight.length > 0) membership.inHistory = new Set(inFlight);
    const lastId = messages.at(-1)?.id ?? since ?? 0;
    const held = membership.pending ?? [];
    membership.pending = undefined;
    held.forEach((raw, i) => {
      const id = membership.pendingIds[i];
      if (id === undefined || id > lastId) this.sendRaw(conn, raw);
    });
    membership.pendingIds = [];
    this.presence(room, 'joined', conn.identity, count);
  }

  private async leave(conn: Connection, room: string): Promise<void> {
    const membership = conn.rooms.get(room);
    if (membership === undefined) throw new FrameError('not_joined', `not in room ${room}`);
    conn.rooms.delete(room);
    this.removeLocal(room, conn);
    const count = await this.bus.leave(room, conn.id, this.localCount(room));
    const { name, guest } = conn.identity;
    const frame: ServerFrame = { type: 'presence', room, event: 'left', name, guest, count };
    // The leaver gets it too, as confirmation.
    this.send(conn, frame);
    this.presence(room, 'left', conn.identity, count);
  }

  private async message(
    conn: Connection,
    requested: string | undefined,
    text: string,
    clientMsgId: string | undefined,
  ): Promise<void> {
    // Refused before anything else, the lobby auto-join included: a reader's post changes nothing.
    const refusal = conn.identity.refusal;
    if (refusal !== undefined) throw new FrameError(refusal.code, refusal.message);
    let room = requested;
    if (!conn.everJoined && (room === undefined || room === LOBBY)) {
      await this.join(conn, LOBBY, undefined);
      room = LOBBY;
    }
    if (room === undefined) throw new FrameError('invalid_room', 'room is required once the connection has joined one');
    if (!conn.rooms.has(room)) throw new FrameError('not_joined', `join room ${room} before sending to it`);
    const { message, created } = await this.repository.append({
      room,
      author: conn.identity.name,
      authorKey: conn.identity.key,
      guest: conn.identity.guest,
      text,
      clientMsgId,
    });
    if (created) {
      this.metrics.messagesStored.inc();
      this.broadcast(room, messageFrame(message), message.id);
      this.bus.publish({ kind: 'message', message });
      this.events.publish('chat.message', { id: message.id, room, author: message.author, guest: message.guest });
    }
    if (clientMsgId !== undefined) this.send(conn, { type: 'ack', clientMsgId, id: message.id });
  }

  private async history(room: string, since: number | undefined): Promise<[ChatMessage[], boolean]> {
    if (since === undefined) return [await this.repository.latest(room, HISTORY_SIZE), false];
    const messages = await this.repository.after(room, since, CATCH_UP_LIMIT + 1);
    return messages.length > CATCH_UP_LIMIT ? [messages.slice(0, CATCH_UP_LIMIT), true] : [messages, false];
  }

  private sendHistory(conn: Connection, room: string, messages: ChatMessage[], truncated: boolean): void {
    this.send(conn, { type: 'history', room, messages, ...(truncated ? { truncated: true as const } : {}) });
  }

  /** Presence change: to local members, and to the other instances. */
  private presence(room: string, event: 'joined' | 'left', who: ChatIdentity, count: number): void {
    const { name, guest } = who;
    this.broadcast(room, { type: 'presence', room, event, name, guest, count });
    this.bus.publish({ kind: 'presence', room, event, name, guest, count });
  }

  private onRemote(event: ChatBusEvent): void {
    if (event.kind === 'message') {
      this.broadcast(event.message.room, messageFrame(event.message), event.message.id);
    } else {
      const { room, name, guest, count } = event;
      this.broadcast(room, { type: 'presence', room, event: event.event, name, guest, count });
    }
  }

  /** Sends to every local member of a room; members still loading history get it afterwards. */
  private broadcast(room: string, frame: ServerFrame, messageId?: number): void {
    const members = this.rooms.get(room);
    if (members === undefined) return;
    const raw = JSON.stringify(frame);
    for (const conn of members.values()) {
      const membership = conn.rooms.get(room);
      if (membership?.pending !== undefined) {
        membership.pending.push(raw);
        membership.pendingIds.push(messageId);
      } else if (messageId === undefined || membership?.inHistory?.delete(messageId) !== true) {
        this.sendRaw(conn, raw);
      }
    }
  }

  private sendError(conn: Connection, code: ChatErrorCode, message: string): void {
    this.metrics.errors.inc({ code });
    this.send(conn, errorFrame(code, message));
  }

  private send(conn: Connection, frame: ServerFrame): void {
    this.sendRaw(conn, JSON.stringify(frame));
  }

  private sendRaw(conn: Connection, raw: string): void {
    if (conn.done || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(raw);
    this.metrics.framesOut.inc();
    if (conn.ws.bufferedAmount > this.config.chat.maxBufferedBytes) this.dropSlow(conn);
  }

  /** A client that does not read its frames is closed rather than buffered without bound. */
  private dropSlow(conn: Connection): void {
    conn.done = true;
    this.metrics.slowClientsDropped.inc();
    this.logger.warn({ connection: conn.id, bufferedBytes: conn.ws.bufferedAmount }, 'chat client too slow; closing');
    conn.ws.close(CLOSE_TRY_AGAIN_LATER, 'too slow: unsent buffer full');
    setTimeout(() => {
      if (conn.ws.readyState !== WebSocket.CLOSED) conn.ws.terminate();
    }, SLOW_CLIENT_KILL_MS).unref();
  }

  /** Pings every connection; one that has not answered the previous ping is terminated. */
  private beat(): void {
    for (const conn of this.connections.values()) {
      if (conn.ws.readyState !== WebSocket.OPEN) continue;
      if (!conn.alive) {
        this.metrics.heartbeatTimeouts.inc();
        conn.done = true;
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  /** A closed connection leaves each of its rooms (presence "left" to the others). */
  private async disconnect(conn: Connection): Promise<void> {
    conn.done = true;
    if (!this.connections.delete(conn.id)) return;
    this.metrics.connections.set(this.connections.size);
    // Let a store in flight finish first, so its broadcast still reaches the room.
    await conn.queue;
    const rooms = [...conn.rooms.entries()];
    conn.rooms.clear();
    for (const [room] of rooms) this.removeLocal(room, conn);
    await Promise.all(
      rooms.map(async ([room]) => {
        const count = await this.bus.leave(room, conn.id, this.localCount(room));
        this.presence(room, 'left', conn.identity, count);
      }),
    );
  }

  private addLocal(room: string, conn: Connection): void {
    let members = this.rooms.get(room);
    if (members === undefined) {
      members = new Map();
      this.rooms.set(room, members);
    }
    members.set(conn.id, conn);
    this.metrics.rooms.set(this.rooms.size);
  }

  private removeLocal(room: string, conn: Connection): void {
    const members = this.rooms.get(room);
    if (members === undefined) return;
    members.delete(conn.id);
    if (members.size === 0) this.rooms.delete(room);
    this.metrics.rooms.set(this.rooms.size);
  }

  private localCount(room: string): number {
    return this.rooms.get(room)?.size ?? 0;
  }

  private track(work: Promise<unknown>): void {
    const tracked = work
      .catch((error: unknown) => {
        this.logger.error({ err: error }, 'chat background task failed');
      })
      .finally(() => {
        this.background.delete(tracked);
      });
    this.background.add(tracked);
  }

  private async within(work: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      work,
      new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
