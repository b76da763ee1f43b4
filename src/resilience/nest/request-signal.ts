import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CancelledError } from '../resilience.errors.js';

const controllers = new WeakMap<FastifyRequest, AbortController>();

/**
 * The AbortController of a request, created on first use: aborted with a
 * CancelledError when the client goes away before the response is sent, or
 * by the timeout interceptor with a TimeoutError.
 */
export function requestAbortController(request: FastifyRequest, reply: FastifyReply): AbortController {
  let controller = controllers.get(request);
  if (controller === undefined) {
    const created = new AbortController();
    controller = created;
    controllers.set(request, created);
    // The response's 'close' fires once: after it was sent, or when the connection died first.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished && !created.signal.aborted) {
        created.abort(new CancelledError('http', 'client closed the connection'));
      }
    });
  }
  return controller;
}

/** The request's AbortSignal, for downstream work that should stop when the request is over. */
export function requestSignalOf(context: ExecutionContext): AbortSignal {
  const http = context.switchToHttp();
  return requestAbortController(http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>()).signal;
}

/** Handler parameter: `@RequestSignal() signal: AbortSignal`. */
export const RequestSignal = createParamDecorator((_data: unknown, context: ExecutionContext): AbortSignal =>
  requestSignalOf(context),
);
