import type { INestApplication } from '@nestjs/common';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { AppConfig } from '../../config/app-config.js';
import { ShutdownState } from './shutdown-state.js';

/**
 * On SIGTERM/SIGINT: readiness turns 503 at once, the process waits the drain
 * delay (so balancers notice), the server stops accepting and lets in-flight
 * requests finish within the grace period, then pools and the embedded
 * database close and the process exits 0.
 */
export function installGracefulShutdown(
  app: INestApplication,
  config: AppConfig,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  let started = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (started) return;
    started = true;
    logger.info({ signal }, 'shutdown: draining');
    app.get(ShutdownState).startDraining();
    if (config.shutdown.drainDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, config.shutdown.drainDelayMs));
    }
    const server = app.getHttpServer() as Server;
    const force = setTimeout(() => {
      logger.warn({ graceMs: config.shutdown.graceMs }, 'shutdown: grace period over, closing open connections');
      server.closeAllConnections();
    }, config.shutdown.graceMs);
    let code = 0;
    try {
      await app.close();
      logger.info('shutdown: complete');
    } catch (error) {
      code = 1;
      logger.error({ err: error }, 'shutdown: failed');
    } finally {
      clearTimeout(force);
    }
    logger.flush();
    exit(code);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void shutdown(signal);
    });
  }
}
