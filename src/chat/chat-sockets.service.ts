import { Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { Caller } from '../auth/caller.js';
import { FanOut } from '../common/async/fan-out.js';
import { AppException } from '../common/errors/app.exception.js';
import { ShutdownState } from '../common/lifecycle/shutdown-state.js';
import { AppConfig } from '../config/app-config.js';
import { isDatabaseUnavailable } from '../database/database.errors.js';
import { LocalTokenBucketStore } from '../resilience/rate-limiter.js';
import {
  ChatConnection,
  CLOSE_GOING_AWAY,
  CLOSE_POLICY_VIOLATION,
  TOKEN_EXPIRED_REASON,
  type ChatSendContext,
} from './chat-connection.js';
import { chatIdentity } from './chat.identity.js';
import { ChatMetrics } from './chat.metrics.js';
import { errorFrame, FrameError, parseClientFrame, type ChatErrorCode, type ClientFrame } from './chat.protocol.js';
import { ChatRooms } from './chat-rooms.service.js';

/** How long shutdown waits for clients to complete the close handshake. */
const SHUTDOWN_CLOSE_WAIT_MS = 1000;
/** Heartbeat ticks per ping interval (each pings its share), at most one per MIN_PING_TICK_MS. */
const PING_TICKS = 30;
const MIN_PING_TICK_MS = 100;
/** Token expiry is checked this often (one timer for every connection). */
const EXPIRY_SWEEP_MS = 250;

/**
 * The chat's socket lifecycle: takes over upgraded WebSockets, reads their
 * frames (rate limit, parse, one at a time per connection) and hands each to
 * {@link ChatRooms}; heartbeats and token expiry on one shared timer each;
 * closes everything at shutdown.
 */
@Injectable()
export class ChatSockets implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(ChatSockets.name);
  private readonly connections = new Map<string, ChatConnection>();
  /** Connections whose token expires, with the moment it stops being valid (ms). */
  private readonly expiring = new Map<ChatConnection, number>();
  /** Frame budgets; a bucket exists only while it refills, so an idle connection has none. */
  private readonly buckets: LocalTokenBucketStore;
  private readonly context: ChatSendContext;
  private readonly background = new Set<Promise<unknown>>();
  private readonly pings = new FanOut(this.logger);
  /** The connections of this heartbeat round, and how far the round has got. */
  private round: ChatConnection[] = [];
  private roundAt = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private expirySweep: NodeJS.Timeout | undefined;
  private shuttingDown = false;

  constructor(
    private readonly config: AppConfig,
    private readonly rooms: ChatRooms,
    private readonly metrics: ChatMetrics,
    private readonly shutdownState: ShutdownState,
  ) {
    this.buckets = new LocalTokenBucketStore({
      ratePerSec: config.chat.ratePerSec,
      capacity: config.chat.rateBurst,
    });
    this.context = { metrics, logger: this.logger, maxBufferedBytes: config.chat.maxBufferedBytes };
  }

  onModuleInit(): void {
    // One timer, spread over the interval: each tick pings its share of the connections, so
    // every one is pinged once per interval and thousands never get their pings at once.
    const ticks = Math.max(1, Math.min(PING_TICKS, Math.floor(this.config.chat.pingIntervalMs / MIN_PING_TICK_MS)));
    this.heartbeat = setInterval(() => {
      this.beat(ticks);
    }, this.config.chat.pingIntervalMs / ticks);
    this.heartbeat.unref();
    this.expirySweep = setInterval(() => {
      this.sweepExpired();
    }, EXPIRY_SWEEP_MS);
    this.expirySweep.unref();
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
    const conn = new ChatConnection(randomUUID(), ws, identity, this.context);
    this.connections.set(conn.id, conn);
    this.metrics.connections.set(this.connections.size);
    ws.on('message', (data: RawData) => {
      this.onFrame(conn, data);
    });
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.once('close', () => {
      this.expiring.delete(conn);
      this.track(this.disconnect(conn));
    });
    conn.send({ type: 'welcome', name: identity.name, guest: identity.guest, canPost: identity.refusal === undefined });
    // Closed (1008 token_expired) once the token is no longer valid: at `exp` plus the
    // verifier's clock tolerance, so a reconnect with the same token is refused, not accepted and closed.
    if (identity.expiresAt !== undefined) {
      this.expiring.set(conn, identity.expiresAt + this.config.auth.clockToleranceS * 1000);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.heartbeat);
    clearInterval(this.expirySweep);
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
    await within(Promise.all(closed), SHUTDOWN_CLOSE_WAIT_MS);
    for (const conn of open) {
      if (conn.ws.readyState !== WebSocket.CLOSED) conn.ws.terminate();
    }
    // Presence updates and stores still in flight (bounded).
    await within(Promise.allSettled([...this.background, ...open.map((c) => c.queue)]), SHUTDOWN_CLOSE_WAIT_MS);
    await this.rooms.stop();
  }

  private onFrame(conn: ChatConnection, data: RawData): void {
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
        await this.rooms.handle(conn, frame);
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

  private sendError(conn: ChatConnection, code: ChatErrorCode, message: string): void {
    this.metrics.errors.inc({ code });
    conn.send(errorFrame(code, message));
  }

  private sweepExpired(): void {
    if (this.expiring.size === 0) return;
    const now = Date.now();
    for (const [conn, deadline] of this.expiring) {
      if (deadline > now) continue;
      this.expiring.delete(conn);
      if (conn.done) continue;
      this.metrics.tokensExpired.inc();
      conn.close(CLOSE_POLICY_VIOLATION, TOKEN_EXPIRED_REASON);
    }
  }

  /**
   * One tick of the heartbeat: pings the next share of this round's connections
   * (a round is `ticks` ticks, one ping interval); one that has not answered its
   * previous ping is terminated.
   */
  private beat(ticks: number): void {
    if (this.round.length === 0 || this.roundAt >= this.round.length) {
      this.round = [...this.connections.values()];
      this.roundAt = 0;
    }
    const share = this.round.slice(this.roundAt, this.roundAt + Math.ceil(this.round.length / ticks));
    this.roundAt += share.length;
    this.pings.run(share, (conn) => {
      if (conn.ws.readyState !== WebSocket.OPEN) return;
      if (!conn.alive) {
        this.metrics.heartbeatTimeouts.inc();
        conn.done = true;
        conn.ws.terminate();
        return;
      }
      conn.alive = false;
      conn.ws.ping();
    });
  }

  /** A closed connection leaves each of its rooms (presence "left" to the others). */
  private async disconnect(conn: ChatConnection): Promise<void> {
    conn.done = true;
    if (!this.connections.delete(conn.id)) return;
    this.metrics.connections.set(this.connections.size);
    // Let a store in flight finish first, so its broadcast still reaches the room.
    await conn.queue;
    await this.rooms.disconnect(conn);
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
}

async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work,
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
