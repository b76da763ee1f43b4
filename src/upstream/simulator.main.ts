/**
 * The upstream simulator as its own process: `npm run upstream`
 * (`node dist/upstream/simulator.main.js`).
 *
 * Listens on UPSTREAM_HOST:UPSTREAM_PORT (default 127.0.0.1:4010) and prints
 * one JSON line with its URL. SIGTERM or SIGINT closes it and exits 0. A bad
 * environment or a failed listen prints one line on stderr and exits 1.
 */
import { ConfigError } from '../config/config.error.js';
import { loadUpstreamConfig, type UpstreamConfig } from '../config/upstream-config.js';
import { startSimulator } from './simulator.js';

function fail(prefix: string, error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`${error instanceof ConfigError ? '' : prefix}${message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: UpstreamConfig;
  try {
    config = loadUpstreamConfig();
  } catch (error) {
    fail('', error);
  }

  const simulator = await startSimulator(config).catch((error: unknown) =>
    fail('upstream simulator failed to start: ', error),
  );
  // Same shape as the service's pino lines, so one log pipeline reads both.
  process.stdout.write(
    `${JSON.stringify({ level: 30, time: new Date().toISOString(), pid: process.pid, msg: 'upstream simulator listening', url: simulator.url })}\n`,
  );

  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    simulator.close().then(
      () => process.exit(0),
      (error: unknown) => fail('upstream simulator failed to close: ', error),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => fail('upstream simulator failed: ', error));
