import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppException } from '../common/errors/app.exception.js';
import type { ErrorCode } from '../common/errors/error-codes.js';
import { PROBLEM_CONTENT_TYPE } from '../common/errors/problem-document.js';
import { mapToProblem } from '../common/errors/problem.mapper.js';
import { REQUEST_ID_HEADER, requestIdFor } from '../common/http/request-id.js';

/** The path of an upgrade request, or undefined when its target does not parse. */
export function upgradePath(request: IncomingMessage): string | undefined {
  try {
    // A fixed base: the Host header is the client's to spoil, and the path does not depend on it.
    return new URL(request.url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a WebSocket upgrade the way every HTTP error is answered: an RFC
 * 9457 problem document (with the request id), then the socket is closed.
 */
export function refuseUpgrade(
  socket: Duplex,
  request: IncomingMessage,
  code: ErrorCode,
  detail: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  refuseUpgradeWith(socket, request, new AppException(code, detail, { headers }));
}

/** {@link refuseUpgrade} for an exception thrown on the way (a bad token: 401 with its WWW-Authenticate). */
export function refuseUpgradeWith(socket: Duplex, request: IncomingMessage, exception: AppException): void {
  // Node drops its own error listener from an upgraded socket: a reset while answering must not go unhandled.
  if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const requestId = requestIdFor(request);
  const { problem, headers } = mapToProblem(exception, { instance: upgradePath(request) ?? '/', requestId });
  const body = JSON.stringify(problem);
  const head: Record<string, string> = {
    Connection: 'close',
    'Content-Type': `${PROBLEM_CONTENT_TYPE}; charset=utf-8`,
    'Content-Length': String(Buffer.byteLength(body)),
    [REQUEST_ID_HEADER]: requestId,
    ...headers,
  };
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${String(problem.status)} ${STATUS_CODES[problem.status] ?? ''}\r\n` +
      `${Object.entries(head)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n')}\r\n\r\n${body}`,
  );
}

/** The problem for one of ws's handshake refusals (its `wsClientError` carries only the message). */
export function handshakeRefusal(message: string): { code: ErrorCode; headers: Readonly<Record<string, string>> } {
  if (message === 'Invalid HTTP method') return { code: 'method_not_allowed', headers: { Allow: 'GET' } };
  if (message.startsWith('Missing or invalid Sec-WebSocket-Version')) {
    return { code: 'bad_request', headers: { 'Sec-WebSocket-Version': '13, 8' } };
  }
  return { code: 'bad_request', headers: {} };
}
