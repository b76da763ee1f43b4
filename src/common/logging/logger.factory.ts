import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { currentRequestId } from '../http/request-context.js';
import { currentTraceLogFields } from '../../telemetry/log-correlation.js';

/**
 * The one JSON logger (Fastify's own pino). The mixin stamps the current
 * request id (and, with tracing on, trace and span ids) on every line written
 * inside a request, whoever writes it.
 */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const reqId = currentRequestId();
        // With tracing on, the active span's traceId and spanId (a fresh object: pino merges into it).
        const ids = currentTraceLogFields();
        if (ids === undefined) return reqId === undefined ? {} : { reqId };
        return reqId === undefined ? { ...ids } : { reqId, ...ids };
      },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], remove: true },
    },
    destination,
  );
}
