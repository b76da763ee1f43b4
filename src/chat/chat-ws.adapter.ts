import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';

/**
 * Nest's ws adapter with two changes for public sockets whose gateways read
 * raw frames themselves: no `{event, data}` parsing when a gateway has no
 * `@SubscribeMessage` handlers (each frame would be JSON-parsed twice for
 * nothing), and client socket errors (a frame over `maxPayload`, a bad
 * handshake) logged at debug level instead of error, since clients cause them.
 */
export class ChatWsAdapter extends WsAdapter {
  private readonly wsLogger = new Logger('WebSocket');

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) return;
    super.bindMessageHandlers(client, handlers, transform);
  }

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (ws: WebSocket) => {
      ws.on('error', (err: Error) => {
        this.wsLogger.debug(`client socket error: ${err.message}`);
      });
    });
    server.on('error', (err: Error) => {
      this.wsLogger.error(err);
    });
    return server;
  }
}
