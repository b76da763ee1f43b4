import type { Logger } from '@nestjs/common';
import { WebSocket } from 'ws';
import type { ChatIdentity } from './chat.identity.js';
import type { ChatMetrics } from './chat.metrics.js';
import type { ServerFrame } from './chat.protocol.js';

/** WebSocket close codes the chat uses. */
export const CLOSE_GOING_AWAY = 1001;
/** Policy violation: the connection's token expired. */
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TRY_AGAIN_LATER = 1013;
export const TOKEN_EXPIRED_REASON = 'token_expired';
/** How long a closed client gets to take its close frame before its socket is destroyed. */
const CLOSE_KILL_MS = 1000;

/** What every connection shares: one object, not a copy per connection. */
export interface ChatSendContext {
  readonly metrics: ChatMetrics;
  readonly logger: Logger;
  /** Unsent bytes a socket may hold before it is closed with 1013. */
  readonly maxBufferedBytes: number;
}

/** One room of a connection. */
export interface Membership {
  /** Frames held back while the join's history is loading; undefined once live. */
  pending: (string | Buffer)[] | undefined;
  /** Ids of messages held back, parallel to `pending` (undefined for other frames). */
  pendingIds: (number | undefined)[];
  /**
   * Recent messages the join's history held when it was read from storage: one
   * stored just before can still arrive live after it (from another instance,
   * or from this one's store), and that copy is dropped once.
   */
  inHistory?: Set<number>;
}

/**
 * One chat WebSocket: who it is, its rooms, and sending with back-pressure
 * (a client that does not read its frames is closed, not buffered without
 * bound). Kept small: an idle room of thousands holds one per member.
 */
export class ChatConnection {
  readonly rooms = new Map<string, Membership>();
  everJoined = false;
  /** Answered the last ping. */
  alive = true;
  /** Closed, closing, or being dropped: nothing more is sent or handled. */
  done = false;
  /** Frames of one connection are handled one after another, in order. */
  queue: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    /** Who the connection is, fixed at the upgrade. */
    readonly identity: ChatIdentity,
    private readonly context: ChatSendContext,
  ) {}

  send(frame: ServerFrame): void {
    this.sendRaw(JSON.stringify(frame));
  }

  /** Sends an encoded frame; a broadcast passes the same buffer to every member. */
  sendRaw(raw: string | Buffer): void {
    if (this.done || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(raw, { binary: false });
    this.context.metrics.framesOut.inc();
    if (this.ws.bufferedAmount > this.context.maxBufferedBytes) this.dropSlow();
  }

  /** Closes with `code`; a peer that never completes the close handshake is cut off. */
  close(code: number, reason: string): void {
    this.done = true;
    this.ws.close(code, reason);
    setTimeout(() => {
      if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    }, CLOSE_KILL_MS).unref();
  }

  private dropSlow(): void {
    this.context.metrics.slowClientsDropped.inc();
    this.context.logger.warn(
      { connection: this.id, bufferedBytes: this.ws.bufferedAmount },
      'chat client too slow; closing',
    );
    this.close(CLOSE_TRY_AGAIN_LATER, 'too slow: unsent buffer full');
  }
}
