import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ERROR_CODES, problemType, type ErrorCode } from '../errors/error-codes.js';
import { sendProblem } from '../errors/problem-details.filter.js';
import { PROBLEM_CONTENT_TYPE, type ProblemDocument } from '../errors/problem-document.js';

// Past this, a header overflow is the request line itself: the URI, not the headers, is too long.
const LONG_REQUEST_LINE = 8 * 1024;

function clientErrorCode(error: NodeJS.ErrnoException & { rawPacket?: Buffer }): ErrorCode {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    const packet = error.rawPacket;
    const lineEnd = packet === undefined ? -1 : packet.indexOf('\r\n');
    return packet !== undefined && (lineEnd === -1 || lineEnd > LONG_REQUEST_LINE)
      ? 'uri_too_long'
      : 'header_too_large';
  }
  return 'bad_request';
}

const CLIENT_ERROR_DETAIL: Partial<Record<ErrorCode, string>> = {
  request_timeout: 'The request was not received in time',
  uri_too_long: 'The request line is longer than the server accepts',
  header_too_large: 'The request headers are larger than the server accepts (16 KiB)',
  bad_request: 'The request is not valid HTTP/1.1',
};

/**
 * Node's HTTP parser refuses some requests before Fastify sees them (malformed
 * HTTP, headers too large, a request that never finished). Fastify would
 * answer those with plain JSON; this writes the same problem document as every
 * other error, straight on the socket, and closes it.
 */
export function clientErrorHandler(logger: Logger): (error: Error, socket: Socket) => void {
  return (error, socket) => {
    const e = error as NodeJS.ErrnoException & { rawPacket?: Buffer };
    if (e.code === 'ECONNRESET' || socket.destroyed) return;
    const code = clientErrorCode(e);
    const { status, title } = ERROR_CODES[code];
    const problem: ProblemDocument = {
      type: problemType(code),
      title,
      status,
      detail: CLIENT_ERROR_DETAIL[code] ?? title,
      code,
      requestId: randomUUID(),
    };
    logger.debug({ err: error, reqId: problem.requestId, code }, 'client error');
    const body = JSON.stringify(problem);
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${String(status)} ${STATUS_CODES[status] ?? title}\r\n` +
          `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${String(Buffer.byteLength(body))}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/** Fastify's router errors (a bad percent-encoding, a path segment over `maxParamLength`) as problem documents. */
export function frameworkErrorHandler(
  logger: Logger,
): (error: Error, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, request, reply) => sendProblem(error, request, reply, logger);
}
