import { type ArgumentsHost, Catch, type ExceptionFilter, NotFoundException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { allowedMethods } from '../http/allowed-methods.js';
import { AppException } from './app.exception.js';
import { mapToProblem } from './problem.mapper.js';
import { PROBLEM_CONTENT_TYPE } from './problem-document.js';

/** A request no route matched, on a path that other methods do answer: 405 with `Allow`, not 404. */
function methodNotAllowed(error: unknown, request: FastifyRequest, path: string): AppException | undefined {
  if (!(error instanceof NotFoundException) || !request.is404) return undefined;
  const allowed = allowedMethods(request.server, request.method, path);
  if (allowed.length === 0) return undefined;
  return new AppException('method_not_allowed', `${request.method} is not allowed here; use ${allowed.join(', ')}`, {
    headers: { allow: allowed.join(', ') },
  });
}

/** Writes any error as a problem document; logs unexpected ones once, with the request id. */
export function sendProblem(error: unknown, request: FastifyRequest, reply: FastifyReply, logger: Logger): void {
  const instance = request.url.split('?')[0] ?? request.url;
  const { problem, headers, unexpected } = mapToProblem(methodNotAllowed(error, request, instance) ?? error, {
    instance,
    requestId: request.id,
  });
  if (unexpected) {
    logger.error({ err: error, reqId: request.id, method: request.method, url: request.url }, 'unhandled error');
  }
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  void reply.status(problem.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(problem);
}

/** The one global filter: every error from every HTTP route becomes RFC 9457. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') {
      throw exception;
    }
    const http = host.switchToHttp();
    sendProblem(exception, http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>(), this.logger);
  }
}
