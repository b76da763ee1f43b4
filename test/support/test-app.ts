import type { Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createApp } from '../../src/app.factory.js';
import { ChatBus } from '../../src/chat/chat.bus.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { parseConfig, processEnv } from '../../src/config/load-config.js';
import { Database } from '../../src/database/database.js';
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

export interface TestAppPair {
  readonly a: TestApp;
  readonly b: TestApp;
  /** The database both use. */
  readonly databaseUrl: string;
  /** Closes both apps, then drops the database. */
  close(): Promise<void>;
}

/**
 * Two apps in this process on one database and `env` (REDIS_URL among it): a
 * fresh database on DATABASE_URL's server, or the first app's embedded one,
 * which the second connects to. Resolves once both chat buses receive the
 * other's events.
 */
export async function startTestAppPair(env: Record<string, string>): Promise<TestAppPair> {
  let a: TestApp;
  let b: TestApp;
  let databaseUrl: string;
  let drop: () => Promise<void> = async () => {};
  const external = externalDatabaseUrl();
  if (external !== undefined) {
    const db = await createTestDatabase(external);
    databaseUrl = db.url ?? '';
    drop = db.drop;
    a = await startTestApp({ ...env, DATABASE_URL: databaseUrl }, { freshDatabase: false });
    b = await startTestApp({ ...env, DATABASE_URL: databaseUrl }, { freshDatabase: false });
  } else {
    // The embedded database belongs to one app: the second connects to the first one's server.
    const small = { DB_POOL_SIZE: '3', NOTIFY_WORKER_ENABLED: 'false' };
    a = await startTestApp({ ...env, ...small });
    databaseUrl = (a.app.get(Database).dataSource.options as { url?: string }).url ?? '';
    b = await startTestApp({ ...env, ...small, DATABASE_URL: databaseUrl }, { freshDatabase: false });
  }
  for (const t of [a, b]) {
    for (let i = 0; i < 100 && !t.app.get(ChatBus).subscribed; i++) await new Promise((r) => setTimeout(r, 50));
    if (!t.app.get(ChatBus).subscribed) throw new Error('a test app did not subscribe to the chat bus within 5 s');
  }
  return {
    a,
    b,
    databaseUrl,
    close: async () => {
      await b.close();
      await a.close();
      await drop();
    },
  };
}
