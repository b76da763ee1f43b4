import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { createClient, type RedisClientType } from 'redis';
import { fireAndForget } from '../common/async/fire-and-forget.js';
import { AppConfig } from '../config/app-config.js';

/**
 * The shared Redis client, present only when REDIS_URL is set. It connects in
 * the background and reconnects forever: the service never waits on Redis to
 * boot or to answer, and every user of it has a local fallback. Commands fail
 * at once while disconnected (no offline queue), so fallbacks kick in fast.
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly client: RedisClientType | undefined;
  private lastErrorLogAt = 0;

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

  onModuleInit(): void {
    const client = this.client;
    if (client === undefined) return;
    client.on('error', (error: unknown) => {
      // Reconnect loops emit an error per try; one line every 10 s is enough.
      const now = Date.now();
      if (now - this.lastErrorLogAt > 10_000) {
        this.lastErrorLogAt = now;
        this.logger.warn({ err: error }, 'redis unavailable; using local fallbacks');
      }
    });
    client.on('ready', () => {
      this.logger.log('redis connected');
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
