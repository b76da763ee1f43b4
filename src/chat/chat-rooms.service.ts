import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { FanOut } from '../common/async/fan-out.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { AppConfig } from '../config/app-config.js';
import type { ChatConnection, Membership } from './chat-connection.js';
import { ChatBus, type ChatBusEvent } from './chat.bus.js';
import type { ChatIdentity } from './chat.identity.js';
import { ChatMessagesRepository } from './chat-messages.repository.js';
import { ChatMetrics } from './chat.metrics.js';
import {
  CATCH_UP_LIMIT,
  FrameError,
  HISTORY_SIZE,
  LOBBY,
  MAX_ROOMS_PER_CONNECTION,
  messageFrame,
  type ChatMessage,
  type ClientFrame,
  type ServerFrame,
} from './chat.protocol.js';
import { PresenceDigest, type PresenceSummary } from './presence-digest.js';
import { RoomHistory } from './room-history.js';

/** How long a stored message may take to reach another instance's clients live (clock skew included). */
const IN_FLIGHT_WINDOW_MS = 30_000;

/** One room with members on this instance. */
interface Room {
  readonly members: Map<string, ChatConnection>;
  /** The room's last HISTORY_SIZE messages, what a plain join gets (replaced when it may have gaps). */
  history: RoomHistory;
  /** The window's first read from storage, shared by the joins waiting for it. */
  loading: Promise<void> | undefined;
}

/** What a join sends as history: the window's (encoded once) or storage's. */
type History =
  | { readonly from: 'window'; readonly frame: Buffer }
  /** A catch-up the window covers. */
  | { readonly from: 'kept'; readonly messages: readonly ChatMessage[] }
  | { readonly from: 'store'; readonly messages: readonly ChatMessage[]; readonly truncated: boolean };

/**
 * The chat's rooms: membership, presence, history and messages. Messages go
 * to PostgreSQL first, then to local members and, through {@link ChatBus}, to
 * the other instances. Each room keeps its recent history in memory (filled
 * from storage on its first join here, then appended to by every message this
 * instance stores or hears of), so a join reads no database; rooms larger
 * than CHAT_PRESENCE_EVENTS_MAX get coalesced presence summaries instead of a
 * frame per join or leave.
 */
@Injectable()
export class ChatRooms implements OnModuleInit {
  private readonly rooms = new Map<string, Room>();
  private readonly digest = new PresenceDigest();
  private readonly logger = new Logger(ChatRooms.name);
  private readonly fanOut = new FanOut(this.logger);
  private digestTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly config: AppConfig,
    private readonly repository: ChatMessagesRepository,
    private readonly bus: ChatBus,
    private readonly metrics: ChatMetrics,
    private readonly events: DomainEvents,
  ) {}

  onModuleInit(): void {
    this.bus.start(
      (event) => {
        this.onRemote(event);
      },
      () => {
        // Redis (re)connected: what was missed while it was away is not in the windows.
        for (const room of this.rooms.values()) {
          room.history = new RoomHistory(HISTORY_SIZE);
          room.loading = undefined;
        }
      },
    );
  }

  /** Stops the presence summaries and the bus (at shutdown, after the sockets closed). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.digestTimer);
    this.digestTimer = undefined;
    await this.bus.stop();
  }

  async handle(conn: ChatConnection, frame: ClientFrame): Promise<void> {
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
      case 'who':
        await this.who(conn, frame.room, frame.cursor, frame.limit);
        return;
    }
  }

  /** A closed connection leaves each of its rooms (presence "left" to the others). */
  async disconnect(conn: ChatConnection): Promise<void> {
    const rooms = [...conn.rooms.keys()];
    conn.rooms.clear();
    for (const room of rooms) this.removeLocal(room, conn);
    await Promise.all(
      rooms.map(async (room) => {
        const count = await this.bus.leave(room, conn.id, this.localCount(room));
        this.presence(room, 'left', conn.identity, count);
      }),
    );
  }

  private async join(conn: ChatConnection, room: string, since: number | undefined): Promise<void> {
    if (conn.rooms.has(room)) {
      // Already a member: only the history is sent again.
      this.sendHistory(conn, room, await this.history(this.roomOf(room), room, since));
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
    const state = this.addLocal(room, conn);
    let count: number;
    let history: History;
    try {
      count = await this.bus.join(room, conn.id, { name, guest }, this.localCount(room));
      history = await this.history(state, room, since);
    } catch (error) {
      conn.rooms.delete(room);
      this.removeLocal(room, conn);
      await this.bus.leave(room, conn.id, this.localCount(room));
      throw error;
    }
    conn.everJoined = true;
    if (conn.done) return;
    this.sendHistory(conn, room, history);
    const sent = history.from === 'window' ? state.history.latest() : history.messages;
    const lastId = sent.at(-1)?.id ?? since ?? 0;
    if (history.from === 'store') {
      const recent = Date.now() - IN_FLIGHT_WINDOW_MS;
      const inFlight = history.messages.filter((m) => Date.parse(m.ts) >= recent).map((m) => m.id);
      if (inFlight.length > 0) membership.inHistory = new Set(inFlight);
    }
    const held = membership.pending ?? [];
    membership.pending = undefined;
    held.forEach((raw, i) => {
      const id = membership.pendingIds[i];
      if (id === undefined || id > lastId) conn.sendRaw(raw);
    });
    membership.pendingIds = [];
    // In a large room the others hear of it in the next summary; the joiner is told at once.
    if (!this.presence(room, 'joined', conn.identity, count)) {
      conn.send({ type: 'presence', room, event: 'joined', name, guest, count });
    }
  }

  private async leave(conn: ChatConnection, room: string): Promise<void> {
    if (!conn.rooms.has(room)) throw new FrameError('not_joined', `not in room ${room}`);
    conn.rooms.delete(room);
    this.removeLocal(room, conn);
    const count = await this.bus.leave(room, conn.id, this.localCount(room));
    const { name, guest } = conn.identity;
    // The leaver gets it too, as confirmation.
    conn.send({ type: 'presence', room, event: 'left', name, guest, count });
    this.presence(room, 'left', conn.identity, count);
  }

  private async message(
    conn: ChatConnection,
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
      this.rooms.get(room)?.history.append(message);
      this.broadcast(room, messageFrame(message), message.id, conn);
      this.bus.publish({ kind: 'message', message });
      this.events.publish('chat.message', { id: message.id, room, author: message.author, guest: message.guest });
    }
    if (clientMsgId !== undefined) conn.send({ type: 'ack', clientMsgId, id: message.id });
  }

  private async who(conn: ChatConnection, room: string, cursor: string | undefined, limit: number): Promise<void> {
    if (!conn.rooms.has(room)) throw new FrameError('not_joined', `join room ${room} to see who is in it`);
    const page = await this.bus.who(room, cursor, limit);
    conn.send({
      type: 'who',
      room,
      count: page.count,
      members: page.members,
      ...(page.cursor === undefined ? {} : { cursor: page.cursor }),
    });
  }

  /** A plain join's history comes from the window; a catch-up beyond it reads storage. */
  private async history(state: Room, room: string, since: number | undefined): Promise<History> {
    // A loop: a reconnect of Redis may replace the window while its first read is in flight.
    while (!state.history.isLoaded) {
      state.loading ??= this.fill(state, room);
      await state.loading;
    }
    if (since === undefined) {
      this.metrics.historyReads.inc({ source: 'window' });
      return { from: 'window', frame: state.history.latestFrame(room) };
    }
    const kept = state.history.after(since);
    if (kept !== undefined) {
      this.metrics.historyReads.inc({ source: 'window' });
      return { from: 'kept', messages: kept };
    }
    this.metrics.historyReads.inc({ source: 'database' });
    const messages = await this.repository.after(room, since, CATCH_UP_LIMIT + 1);
    return messages.length > CATCH_UP_LIMIT
      ? { from: 'store', messages: messages.slice(0, CATCH_UP_LIMIT), truncated: true }
      : { from: 'store', messages, truncated: false };
  }

  private async fill(state: Room, room: string): Promise<void> {
    const history = state.history;
    try {
      this.metrics.historyReads.inc({ source: 'database' });
      const stored = await this.repository.latest(room, HISTORY_SIZE);
      history.fill(stored);
    } finally {
      if (state.history === history) state.loading = undefined;
    }
  }

  private sendHistory(conn: ChatConnection, room: string, history: History): void {
    if (history.from === 'window') {
      conn.sendRaw(history.frame);
      return;
    }
    const truncated = history.from === 'store' && history.truncated;
    conn.send({
      type: 'history',
      room,
      messages: history.messages,
      ...(truncated ? { truncated: true as const } : {}),
    });
  }

  /**
   * A presence change: to the other instances, and to local members, as its
   * own frame in a small room (returns true) or counted into the next summary
   * in a large one (returns false).
   */
  private presence(room: string, event: 'joined' | 'left', who: ChatIdentity, count: number): boolean {
    const { name, guest } = who;
    this.bus.publish({ kind: 'presence', room, event, name, guest, count });
    return this.deliverPresence(room, event, name, guest, count);
  }

  private deliverPresence(
    room: string,
    event: 'joined' | 'left',
    name: string,
    guest: boolean,
    count: number,
  ): boolean {
    if (count > this.config.chat.presenceEventsMax) {
      this.digest.record(room, event, count);
      this.metrics.presenceCoalesced.inc();
      this.armDigest();
      return false;
    }
    // A room back under the bound: its pending summary goes first, so counts stay in order.
    const pending = this.digest.take(room);
    if (pending !== undefined) this.sendSummary(pending);
    this.broadcast(room, { type: 'presence', room, event, name, guest, count });
    return true;
  }

  private armDigest(): void {
    if (this.digestTimer !== undefined || this.stopped) return;
    this.digestTimer = setInterval(() => {
      const summaries = this.digest.drain();
      // Nothing changed for a whole interval: the timer stops until the next change.
      if (summaries.length === 0) {
        clearInterval(this.digestTimer);
        this.digestTimer = undefined;
      }
      for (const summary of summaries) this.sendSummary(summary);
    }, this.config.chat.presenceIntervalMs);
    this.digestTimer.unref();
  }

  private sendSummary({ room, count, joined, left }: PresenceSummary): void {
    this.metrics.presenceSummaries.inc();
    this.broadcast(room, { type: 'presence', room, event: 'summary', count, joined, left });
  }

  private onRemote(event: ChatBusEvent): void {
    if (event.kind === 'message') {
      const { message } = event;
      // A copy the window already holds (its first read found it stored) was sent with the history.
      if (this.rooms.get(message.room)?.history.append(message) === 'duplicate') return;
      this.broadcast(message.room, messageFrame(message), message.id);
    } else if (this.rooms.has(event.room)) {
      this.deliverPresence(event.room, event.event, event.name, event.guest, event.count);
    }
  }

  /**
   * Sends to every local member of a room, encoded once; members still loading
   * history get it afterwards. Who gets it is settled now; the writes go out in
   * slices that leave the event loop free (a room of thousands), `first` (the
   * sender, so its echo comes before its ack) at once.
   */
  private broadcast(room: string, frame: ServerFrame, messageId?: number, first?: ChatConnection): void {
    const state = this.rooms.get(room);
    if (state === undefined) return;
    const raw = Buffer.from(JSON.stringify(frame));
    const recipients: ChatConnection[] = [];
    for (const conn of state.members.values()) {
      const membership = conn.rooms.get(room);
      if (membership?.pending !== undefined) {
        membership.pending.push(raw);
        membership.pendingIds.push(messageId);
      } else if (messageId === undefined || membership?.inHistory?.delete(messageId) !== true) {
        if (conn === first) conn.sendRaw(raw);
        else recipients.push(conn);
      }
    }
    this.fanOut.run(recipients, (conn) => {
      conn.sendRaw(raw);
    });
  }

  private roomOf(room: string): Room {
    let state = this.rooms.get(room);
    if (state === undefined) {
      state = { members: new Map(), history: new RoomHistory(HISTORY_SIZE), loading: undefined };
      this.rooms.set(room, state);
    }
    return state;
  }

  private addLocal(room: string, conn: ChatConnection): Room {
    const state = this.roomOf(room);
    state.members.set(conn.id, conn);
    this.metrics.rooms.set(this.rooms.size);
    return state;
  }

  private removeLocal(room: string, conn: ChatConnection): void {
    const state = this.rooms.get(room);
    if (state === undefined) return;
    state.members.delete(conn.id);
    // The window goes with the last member: a later first join reads storage again.
    if (state.members.size === 0) this.rooms.delete(room);
    this.metrics.rooms.set(this.rooms.size);
  }

  private localCount(room: string): number {
    return this.rooms.get(room)?.members.size ?? 0;
  }
}
