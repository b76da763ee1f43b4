import underPressure from '@fastify/under-pressure';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AppConfig } from '../../config/app-config.js';
import { ERROR_CODES, problemType } from '../../common/errors/error-codes.js';
import { PROBLEM_CONTENT_TYPE } from '../../common/errors/problem-document.js';

/** Probes and scrapes must keep answering while the service sheds load. */
const EXEMPT = new Set(['/health', '/ready', '/metrics']);

/**
 * Sheds load with @fastify/under-pressure: past the event-loop delay,
 * event-loop utilisation or heap thresholds, new requests get 503 with
 * Retry-After at once instead of queueing behind a stalled loop.
 */
export async function registerLoadShedding(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  const { maxEventLoopDelayMs, maxEventLoopUtilization, maxHeapBytes, retryAfterSeconds } = config.loadShedding;
  if (maxEventLoopDelayMs === 0 && maxEventLoopUtilization === 0 && maxHeapBytes === 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    maxEventLoopUtilization,
    maxHeapUsedBytes: maxHeapBytes,
    retryAfter: retryAfterSeconds,
    pressureHandler: (request, reply, type) => {
      const path = request.url.split('?')[0] ?? request.url;
      if (EXEMPT.has(path)) return undefined;
      void reply
        .status(503)
        .header('retry-after', String(retryAfterSeconds))
        .type(PROBLEM_CONTENT_TYPE)
        .send({
          type: problemType('overloaded'),
          title: ERROR_CODES.overloaded.title,
          status: 503,
          detail: `The server is overloaded (${type}); retry after ${String(retryAfterSeconds)} s`,
          instance: path,
          code: 'overloaded',
          requestId: request.id,
        });
      return undefined;
    },
  });
}
