import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsRegistry } from '../metrics/metrics.registry.js';

@Injectable()
export class ChatMetrics {
  readonly connections: Gauge;
  readonly rooms: Gauge;
  readonly framesIn: Counter;
  readonly framesOut: Counter;
  readonly messagesStored: Counter;
  readonly errors: Counter<'code'>;
  readonly slowClientsDropped: Counter;
  readonly heartbeatTimeouts: Counter;
  readonly tokensExpired: Counter;
  readonly presenceCoalesced: Counter;
  readonly presenceSummaries: Counter;
  readonly historyReads: Counter<'source'>;

  constructor(registry: MetricsRegistry) {
    const registers = [registry];
    this.connections = new Gauge({ name: 'chat_connections', help: 'Open chat WebSocket connections', registers });
    this.rooms = new Gauge({ name: 'chat_rooms', help: 'Chat rooms with a member on this instance', registers });
    this.framesIn = new Counter({ name: 'chat_frames_in_total', help: 'Frames received from chat clients', registers });
    this.framesOut = new Counter({ name: 'chat_frames_out_total', help: 'Frames sent to chat clients', registers });
    this.messagesStored = new Counter({
      name: 'chat_messages_total',
      help: 'Chat messages stored (acknowledged resends not counted)',
      registers,
    });
    this.errors = new Counter({
      name: 'chat_errors_total',
      help: 'Error frames sent to chat clients, by code',
      labelNames: ['code'],
      registers,
    });
    this.slowClientsDropped = new Counter({
      name: 'chat_slow_clients_dropped_total',
      help: 'Chat connections closed with 1013 because their unsent buffer passed CHAT_MAX_BUFFERED_BYTES',
      registers,
    });
    this.heartbeatTimeouts = new Counter({
      name: 'chat_heartbeat_timeouts_total',
      help: 'Chat connections terminated for missing a pong',
      registers,
    });
    this.tokensExpired = new Counter({
      name: 'chat_tokens_expired_total',
      help: 'Chat connections closed with 1008 because their token expired',
      registers,
    });
    this.presenceCoalesced = new Counter({
      name: 'chat_presence_coalesced_total',
      help: 'Joins and leaves of rooms over CHAT_PRESENCE_EVENTS_MAX counted into a summary instead of sent one by one',
      registers,
    });
    this.historyReads = new Counter({
      name: 'chat_history_reads_total',
      help: "Chat history reads: database (a room's first join on this instance, or a catch-up past the window) and window (joins answered from the in-memory window)",
      labelNames: ['source'],
      registers,
    });
    this.presenceSummaries = new Counter({
      name: 'chat_presence_summaries_total',
      help: 'Coalesced presence summaries sent to rooms (one per room per interval at most)',
      registers,
    });
  }
}
