import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { currentRequestId } from '../http/request-context.js';

/**
 * The one JSON logger (Fastify's own pino). The mixin stamps the current
 * request id on every line written inside a request, whoever writes it.
 */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const reqId = currentRequestId();
        return reqId === undefined ? {} : { reqId };
      },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], remove: true },
    },
    destination,
  );
}
