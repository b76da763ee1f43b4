import { createApp } from './app.factory.js';
import { installGracefulShutdown } from './common/lifecycle/graceful-shutdown.js';
import { ConfigError } from './config/config.error.js';
import { loadConfig } from './config/load-config.js';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const { app, logger } = await createApp(config);
  installGracefulShutdown(app, config, logger);
  await app.listen({ host: config.http.host, port: config.http.port });
  logger.info({ url: await app.getUrl(), database: config.database.mode }, 'listening');
}

bootstrap().catch((error: unknown) => {
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
