import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';

/** Every domain event the service publishes, by type. */
export type DomainEventType = keyof DomainEventMap;

export interface DomainEventMap {
  'user.created': { readonly userId: number };
  'user.updated': { readonly userId: number };
  'user.deleted': { readonly userId: number };
  // `requestedBy`: /events shows these only to that caller (and admins).
  'notification.delivered': {
    readonly notificationId: string;
    readonly requestedBy: string;
    readonly attempts: number;
  };
  'notification.failed': {
    readonly notificationId: string;
    readonly requestedBy: string;
    readonly attempts: number;
    readonly error: string;
  };
  'breaker.state': { readonly policy: string; readonly from: string; readonly to: string };
  'chat.message': { readonly id: number; readonly room: string; readonly author: string; readonly guest: boolean };
}

/** Every event type, for subscribers that want them all (the /events stream). */
export const DOMAIN_EVENT_TYPES: readonly DomainEventType[] = [
  'user.created',
  'user.updated',
  'user.deleted',
  'notification.delivered',
  'notification.failed',
  'breaker.state',
  'chat.message',
];

/**
 * In-process publish/subscribe for domain events, so modules react to each
 * other (profiles evict on user changes) without importing each other.
 * Listeners run synchronously and must not throw; a throwing one is isolated.
 */
@Injectable()
export class DomainEvents {
  private readonly emitter = new EventEmitter({ captureRejections: false });

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish<K extends DomainEventType>(type: K, data: DomainEventMap[K]): void {
    for (const listener of this.emitter.listeners(type)) {
      try {
        (listener as (d: DomainEventMap[K]) => void)(data);
      } catch {
        // One faulty subscriber must not break the publisher or the others.
      }
    }
  }

  /** Subscribes; returns the unsubscribe function. */
  subscribe<K extends DomainEventType>(type: K, listener: (data: DomainEventMap[K]) => void): () => void {
    this.emitter.on(type, listener);
    return () => {
      this.emitter.off(type, listener);
    };
  }
}
