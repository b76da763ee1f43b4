import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { mapToProblem } from './problem.mapper.js';
import { PROBLEM_CONTENT_TYPE } from './problem-document.js';

/** Writes any error as a problem document; logs unexpected ones once, with the request id. */
export function sendProblem(error: unknown, request: FastifyRequest, reply: FastifyReply, logger: Logger): void {
  const { problem, headers, unexpected } = mapToProblem(error, {
    instance: request.url.split('?')[0] ?? request.url,
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
