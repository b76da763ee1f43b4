import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

export interface RequestLogOptions {
  /** A line for every request. */
  readonly access: boolean;
  /** With the access log off, requests at least this slow still get their line (0 = never). */
  readonly slowMs: number;
}

/**
 * One line per answered request, written once from `onResponse`: every request
 * with the access log on; with it off, only 5xx answers (`warn`) and answers
 * slower than `slowMs` (`warn`, `slow: true`), so production keeps what an
 * operator needs without paying a log line per request.
 */
/** A token given as `?access_token=` (EventSource, browser WebSockets) never reaches a log line. */
export const redactToken = (url: string): string =>
  url.includes('access_token=') ? url.replace(/([?&]access_token=)[^&]*/g, '$1[redacted]') : url;

export function registerRequestLog(fastify: FastifyInstance, logger: Logger, options: RequestLogOptions): void {
  const { access, slowMs } = options;
  const slowLimit = slowMs > 0 ? slowMs : Number.POSITIVE_INFINITY;
  fastify.addHook('onResponse', (request, reply, done) => {
    const statusCode = reply.statusCode;
    const durationMs = reply.elapsedTime;
    const slow = durationMs >= slowLimit;
    if (access || slow || statusCode >= 500) {
      const line = {
        reqId: request.id,
        method: request.method,
        url: redactToken(request.url),
        route: request.routeOptions.url,
        statusCode,
        durationMs: Math.round(durationMs * 100) / 100,
        ...(slow ? { slow: true } : {}),
      };
      if (slow || statusCode >= 500) logger.warn(line, 'request completed');
      else logger.info(line, 'request completed');
    }
    done();
  });
}
