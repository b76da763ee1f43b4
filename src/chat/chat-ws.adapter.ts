import { type INestApplicationContext, Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';
import { AppException } from '../common/errors/app.exception.js';
import { handshakeRefusal, refuseUpgrade, refuseUpgradeWith, upgradePath } from './ws-handshake.js';

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Checks an upgrade before it happens (the caller's token): returns (or
 * resolves) to let it through, throws (or rejects) an AppException to refuse
 * it with that problem.
 */
export type UpgradeGate = (request: IncomingMessage) => void | Promise<void>;

/**
 * Nest's ws adapter with two changes for public sockets whose gateways read
 * raw frames themselves: no `{event, data}` parsing when a gateway has no
 * `@SubscribeMessage` handlers (each frame would be JSON-parsed twice for
 * nothing), and client socket errors (a frame over `maxPayload`, a bad
 * handshake) logged at debug level instead of error, since clients cause them.
 * Refused upgrades are answered with problem documents like every HTTP error:
 * a bad handshake at /ws (ws's own answer was a text/html 400), an upgrade
 * to a path with no WebSocket endpoint (Nest's adapter dropped the socket
 * unanswered) or with a target that does not parse (Nest's wrote a broken
 * response). An {@link UpgradeGate} may refuse an upgrade before it happens
 * (a bad token: 401, keys unavailable: 503).
 */
export class ChatWsAdapter extends WsAdapter {
  private readonly wsLogger = new Logger('WebSocket');
  private readonly upgradeListeners = new Map<number, UpgradeListener>();

  constructor(
    app: INestApplicationContext,
    private readonly gate: UpgradeGate = () => undefined,
  ) {
    super(app);
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) return;
    super.bindMessageHandlers(client, handlers, transform);
  }

  /** Nest's upgrade routing, with every refusal answered (see the class comment). */
  protected override ensureHttpServerExists(port: number, httpServer: Server = createServer()): Server | undefined {
    if (this.httpServersRegistry.has(port)) return undefined;
    this.httpServersRegistry.set(port, httpServer);
    const listener: UpgradeListener = (request, socket, head) => {
      const path = upgradePath(request);
      if (path === undefined) {
        refuseUpgrade(socket, request, 'bad_request', 'The request target is not a valid URL');
        return;
      }
      const servers = (this.wsServersRegistry.get(port) ?? []) as (WebSocketServer & { path?: string })[];
      const server = servers.find((s) => s.path === path);
      if (server === undefined) {
        refuseUpgrade(socket, request, 'not_found', `No WebSocket endpoint at ${path}`);
        return;
      }
      const upgrade = () => {
        server.handleUpgrade(request, socket, head, (ws) => {
          server.emit('connection', ws, request);
        });
      };
      let gated: void | Promise<void>;
      try {
        gated = this.gate(request);
      } catch (error) {
        this.refuse(socket, request, error);
        return;
      }
      if (!(gated instanceof Promise)) {
        upgrade();
        return;
      }
      // Node left the socket without an error listener; a reset while the token is verified must not crash.
      const onError = () => socket.destroy();
      socket.on('error', onError);
      gated.then(
        () => {
          socket.off('error', onError);
          if (!socket.destroyed) upgrade();
        },
        (error: unknown) => {
          this.refuse(socket, request, error);
        },
      );
    };
    httpServer.on('upgrade', listener);
    this.upgradeListeners.set(port, listener);
    return httpServer;
  }

  private refuse(socket: Duplex, request: IncomingMessage, error: unknown): void {
    if (!(error instanceof AppException)) this.wsLogger.error(error);
    refuseUpgradeWith(socket, request, error instanceof AppException ? error : new AppException('internal_error'));
  }

  override async dispose(): Promise<void> {
    for (const [port, listener] of this.upgradeListeners) {
      (this.httpServersRegistry.get(port) as Server | undefined)?.off('upgrade', listener);
    }
    this.upgradeListeners.clear();
    await super.dispose();
  }

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    // With a listener, ws leaves a refused handshake's answer to it.
    server.on('wsClientError', (error: Error, socket: Duplex, request: IncomingMessage) => {
      const { code, headers } = handshakeRefusal(error.message);
      refuseUpgrade(socket, request, code, error.message, headers);
    });
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
