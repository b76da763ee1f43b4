import cluster from 'node:cluster';
import { installGracefulShutdown } from './common/lifecycle/graceful-shutdown.js';
import type { AppConfig } from './config/app-config.js';
import { ConfigError } from './config/config.error.js';
import { loadConfig } from './config/load-config.js';
import { exitAfterTracing, startTracing } from './telemetry/tracing.js';

/** The service itself: the only process, or one cluster worker. */
async function bootstrap(config: AppConfig): Promise<void> {
  // Tracing patches http and pg as they load, so the app is imported after it starts.
  const tracing = await startTracing(config);
  const { createApp } = await import('./app.factory.js');
  const { app, logger } = await createApp(config);
  installGracefulShutdown(app, config, logger, exitAfterTracing(tracing));
  await app.listen({ host: config.http.host, port: config.http.port });
  logger.info({ url: await app.getUrl(), database: config.database.mode }, 'listening');
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.cluster.workers > 1 && cluster.isPrimary) {
    // Imported only here, so workers load none of the primary's modules before tracing starts.
    const { runPrimary } = await import('./cluster/cluster.primary.js');
    process.exit(await runPrimary(config));
  }
  await bootstrap(config);
}

main().catch((error: unknown) => {
  // A bad environment is reported in one line, without a stack.
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(
      `startup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
});
