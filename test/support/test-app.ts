import type { Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createApp } from '../../src/app.factory.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { parseConfig, processEnv } from '../../src/config/load-config.js';
import { createTestDatabase } from './test-database.js';
import { TEST_KEYS_DIR } from './tokens.js';

export interface StartTestAppOptions {
  /**
   * Create a fresh database for the app (the default). With `false`, the env is
   * used as given: a DATABASE_URL in it is connected to directly (no CREATE
   * DATABASE through it, nothing dropped on close), and without one the app
   * starts its embedded default.
   */
  readonly freshDatabase?: boolean;
  /** Extra Nest modules to mount beside the app's own (probe routes for cross-cutting behaviour). */
  readonly extraImports?: readonly Type[];
}

export interface TestApp {
  readonly app: NestFastifyApplication;
  readonly config: AppConfig;
  readonly logger: Logger;
  /** Base URL of the listening server, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Every JSON log line the app wrote. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The real Redis under test, when CI provides one. */
export const externalRedisUrl = (): string | undefined => processEnv()['REDIS_URL'] || undefined;

/** The real-service URL under test, when CI provides one. */
export const externalDatabaseUrl = (): string | undefined => processEnv()['DATABASE_URL'] || undefined;

/**
 * Starts the real application (as main.ts builds it) on a random loopback
 * port, against a fresh database: embedded in memory, or a new database on
 * DATABASE_URL's server when that is set.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: StartTestAppOptions = {},
): Promise<TestApp> {
  const database =
    options.freshDatabase === false
      ? { url: undefined, drop: async () => {} }
      : await createTestDatabase(env['DATABASE_URL'] ?? externalDatabaseUrl());
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    LOG_ACCESS: 'false',
    PGLITE_DATA_DIR: 'memory://',
    HOST: '127.0.0.1',
    PORT: '0',
    // Suites that test the limiter turn it on with their own numbers.
    RATE_LIMIT_RATE: '0',
    // Likewise load shedding: a busy CI machine must not turn test requests away.
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    // Tokens minted by test/support/tokens.ts verify against this key.
    AUTH_KEYS_DIR: TEST_KEYS_DIR,
    // Every test app owns its Redis keys (ids restart in each fresh database); suites that share pass their own.
    REDIS_KEY_PREFIX: `test-${randomUUID().slice(0, 8)}:`,
    ...(database.url !== undefined ? { DATABASE_URL: database.url } : {}),
    // With REDIS_URL set (CI's real-service pass), every app uses Redis as deployed.
    ...(externalRedisUrl() !== undefined ? { REDIS_URL: externalRedisUrl() } : {}),
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const { app, logger } = await createApp(config, { logDestination: sink, extraImports: options.extraImports ?? [] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    config,
    logger,
    url: `http://127.0.0.1:${String(address.port)}`,
    logs,
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}

/** Waits (up to 5 s) until the app reports its Redis connected: it connects in the background after boot. */
export async function waitForRedis(t: Pick<TestApp, 'url'>): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const ready = (await (await fetch(`${t.url}/ready`)).json()) as { details: { redis?: { connected?: boolean } } };
    if (ready.details.redis?.connected === true) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
