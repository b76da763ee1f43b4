import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { createClient, type RedisClientType } from 'redis';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { AppConfig } from '../config/app-config.js';

/** A feature's warnings about a connected Redis that failed it, at most this often per message. */
const FAILURE_WARN_INTERVAL_MS = 10_000;
/** How long a feature's failure waits to learn whether the connection itself is down. */
const OUTAGE_NOTICE_GRACE_MS = 1000;
/** After a reconnect, failures of the other connections still belong to the outage for this long. */
const RECONNECT_SETTLE_MS = 5000;

/** node-redis's errors of a connection that is down or going down, and the socket errors behind them. */
const CONNECTION_ERRORS = new Set([
  'ClientOfflineError',
  'ClientClosedError',
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
]);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** True for a failure that says Redis is unreachable from some connection: the outage's own line covers it. */
function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return CONNECTION_ERRORS.has(error.constructor.name) || (code !== undefined && SOCKET_CODES.has(code));
}

/** Where a feature's log lines about Redis go: a Nest logger or anything with the same two methods. */
export interface FailureLogger {
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/**
 * The shared Redis client, present only when REDIS_URL is set. It connects in
 * the background and reconnects forever: the service never waits on Redis to
 * boot or to answer, and every user of it has a local fallback. Commands fail
 * at once while disconnected (no offline queue), so fallbacks kick in fast.
 *
 * An outage is logged here once when it starts and once when it ends; the
 * features that fall back meanwhile report through `reportFailure`, which keeps
 * them quiet while the loss is already on record.
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly client: RedisClientType | undefined;
  private everReady = false;
  /** When the current outage began (undefined while connected, or before the first try failed). */
  private downSince: number | undefined;
  /** Outages so far: a feature's failure that comes with a new one is part of it. */
  private outages = 0;
  /** When the connection last became ready after an outage (0: never down). */
  private upSince = 0;
  private readonly lastFailureWarnAt = new Map<string, number>();

  constructor(config: AppConfig) {
    this.client =
      config.redisUrl === undefined
        ? undefined
        : createClient({
            url: config.redisUrl,
            disableOfflineQueue: true,
            socket: {
              connectTimeout: 1000,
              reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2000),
            },
          });
  }

  get configured(): boolean {
    return this.client !== undefined;
  }

  get ready(): boolean {
    return this.client?.isReady ?? false;
  }

  /**
   * Logs a feature's failed Redis call. While the connection is down (or just
   * back, with other connections still reconnecting), and for any error that
   * says a connection is down, the loss is already on record: debug. Any other
   * failure (a slow or refusing server) is a warning, at most every 10 s per
   * message, unless the connection turns out to be going down within a second:
   * its own socket may notice after a feature's command timed out.
   * `onWarned` runs when the warning is written.
   */
  reportFailure(
    logger: FailureLogger,
    message: string,
    error: unknown,
    fields: object = {},
    onWarned?: () => void,
  ): void {
    const line = { ...fields, err: error };
    const now = Date.now();
    // Other connections (subscriber, cache, reader) reconnect on their own backoff, up to 2 s later.
    if (
      this.downSince !== undefined ||
      !this.ready ||
      now - this.upSince < RECONNECT_SETTLE_MS ||
      isConnectionError(error)
    ) {
      logger.debug(line, message);
      return;
    }
    if (now - (this.lastFailureWarnAt.get(message) ?? 0) < FAILURE_WARN_INTERVAL_MS) return;
    this.lastFailureWarnAt.set(message, now);
    const outages = this.outages;
    setTimeout(() => {
      if (this.outages !== outages) {
        logger.debug(line, message);
        return;
      }
      logger.warn(line, message);
      onWarned?.();
    }, OUTAGE_NOTICE_GRACE_MS).unref();
  }

  onModuleInit(): void {
    const client = this.client;
    if (client === undefined) return;
    // The reconnect loop emits an error per try: only the first of an outage is news.
    client.on('error', (error: unknown) => {
      if (this.downSince !== undefined) {
        this.logger.debug({ err: error }, 'redis still unavailable');
        return;
      }
      this.downSince = Date.now();
      this.outages++;
      this.logger.warn(
        { err: error },
        this.everReady
          ? 'redis connection lost; shared state falls back to local until it is back'
          : 'redis unavailable; using local fallbacks until it answers',
      );
    });
    client.on('ready', () => {
      const downSince = this.downSince;
      this.downSince = undefined;
      if (this.everReady && downSince !== undefined) {
        this.upSince = Date.now();
        this.logger.log({ downForMs: this.upSince - downSince }, 'redis connection restored');
      } else {
        this.logger.log('redis connected');
      }
      this.everReady = true;
    });
    fireAndForget(
      client.connect(),
      {
        error: (fields, message) => {
          this.logger.warn(fields, message);
        },
      },
      'redis connect',
    );
  }

  async onApplicationShutdown(): Promise<void> {
    const client = this.client;
    if (client === undefined) return;
    if (client.isOpen) {
      try {
        await client.close();
      } catch {
        client.destroy();
      }
    } else {
      client.destroy();
    }
  }
}
