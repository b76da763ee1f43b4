import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { RedisClientType } from 'redis';
import { AppConfig } from '../../config/app-config.js';
import { RedisConnection } from '../../redis/redis.connection.js';
import type { CircuitBreakerPolicy } from '../circuit-breaker.policy.js';
import { ResilienceMetrics } from './resilience.metrics.js';

interface BreakerMessage {
  readonly origin: string;
  readonly policy: string;
  readonly state: 'open' | 'closed';
}

const isMessage = (value: unknown): value is BreakerMessage => {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return typeof m.origin === 'string' && typeof m.policy === 'string' && (m.state === 'open' || m.state === 'closed');
};

/**
 * Breakers shared across instances through Redis pub/sub. When a breaker
 * opens from closed here, every other instance opens its own for the same
 * dependency (one cooldown; then each half-opens and probes for itself), and
 * a close here closes theirs. Transitions that came from another instance are
 * not passed on, and reopening after a failed probe is not published: one
 * instance's bad luck cannot hold the fleet open. Without Redis, or while it
 * is away, breakers are local; a message missed meanwhile is not replayed.
 */
@Injectable()
export class BreakerSync implements OnApplicationShutdown {
  /** Unique per process start: an instance skips its own messages. */
  readonly instanceId = randomUUID();
  private readonly logger = new Logger('Resilience');
  private readonly channel: string;
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();
  private subscriber: RedisClientType | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly metrics: ResilienceMetrics,
    config: AppConfig,
  ) {
    this.channel = `${config.redisKeyPrefix}resilience:breakers`;
  }

  /** Shares `breaker` with the other instances (nothing without Redis). */
  share(breaker: CircuitBreakerPolicy): void {
    if (this.redis.client === undefined) return;
    this.breakers.set(breaker.name, breaker);
    breaker.onStateChange(({ from, to, remote }) => {
      if (remote) return;
      if (to === 'open' && from === 'closed') this.publish(breaker.name, 'open');
      else if (to === 'closed') this.publish(breaker.name, 'closed');
    });
    this.subscribe();
  }

  async onApplicationShutdown(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber === undefined) return;
    try {
      // A client still trying to (re)connect is destroyed: close() would wait for it.
      if (subscriber.isReady) await subscriber.close();
      else subscriber.destroy();
    } catch {
      subscriber.destroy();
    }
  }

  private publish(policy: string, state: 'open' | 'closed'): void {
    const client = this.redis.client;
    if (client?.isReady !== true) return;
    const message: BreakerMessage = { origin: this.instanceId, policy, state };
    this.metrics.breakerShared(policy, 'published');
    client.publish(this.channel, JSON.stringify(message)).catch((error: unknown) => {
      this.redis.reportFailure(this.logger, 'breaker state not published', error, { policy });
    });
  }

  private subscribe(): void {
    const client = this.redis.client;
    if (client === undefined || this.subscriber !== undefined) return;
    // A connection in subscriber mode cannot run other commands: it needs its own.
    const subscriber = client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (error: unknown) => {
      this.redis.reportFailure(this.logger, 'breaker subscriber: redis unavailable', error);
    });
    void (async () => {
      try {
        await subscriber.connect();
        // node-redis subscribes again by itself after a reconnect.
        await subscriber.subscribe(this.channel, (raw) => {
          this.receive(raw);
        });
      } catch (error) {
        this.redis.reportFailure(this.logger, 'breaker subscriber could not subscribe', error);
      }
    })();
  }

  private receive(raw: string): void {
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!isMessage(message) || message.origin === this.instanceId) return;
    const breaker = this.breakers.get(message.policy);
    if (breaker?.applyRemote(message.state) !== true) return;
    this.metrics.breakerShared(message.policy, 'applied');
    this.logger.log(
      { policy: message.policy, state: message.state, from: message.origin },
      `circuit breaker ${message.state === 'open' ? 'opened' : 'closed'} by another instance`,
    );
  }
}
