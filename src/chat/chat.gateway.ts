import { type OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { ChatUpgradeAuthenticator } from './chat-upgrade.authenticator.js';
import { MAX_FRAME_BYTES } from './chat.protocol.js';
import { ChatSockets } from './chat-sockets.service.js';

/**
 * The chat's WebSocket endpoint, `/ws` on the app's own port. Frames are flat
 * JSON objects with a `type` (not Nest's `{event, data}`), so the gateway hands
 * each socket to {@link ChatSockets}, which reads its frames itself, with the
 * caller its upgrade was authenticated as (undefined: a guest).
 */
@WebSocketGateway({
  path: '/ws',
  // ws closes a connection sending a larger frame with 1009 (message too big).
  maxPayload: MAX_FRAME_BYTES,
  // Compression would let a small frame inflate past the limit's intent and costs CPU per client.
  perMessageDeflate: false,
})
export class ChatGateway implements OnGatewayConnection<WebSocket> {
  constructor(
    private readonly chat: ChatSockets,
    private readonly upgrades: ChatUpgradeAuthenticator,
  ) {}

  handleConnection(client: WebSocket, request?: IncomingMessage): void {
    this.chat.accept(client, this.upgrades.callerOf(request));
  }
}
