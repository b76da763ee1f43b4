/** Removes a listener added with {@link Event}. */
export interface Disposable {
  dispose(): void;
}

/** Subscribes a listener; returns a handle that unsubscribes it. */
export type Event<T> = (listener: (value: T) => void) => Disposable;

/**
 * A tiny synchronous emitter. `emit` is a no-op without listeners, and
 * callers guard payload construction with `hasListeners`, so events cost
 * nothing unless something (metrics, logs) subscribes.
 *
 * @publicApi
 */
export class EventEmitter<T> {
  private listeners: ((value: T) => void)[] = [];

  /** Subscribe to this emitter. */
  readonly event: Event<T> = (listener) => {
    this.listeners = [...this.listeners, listener];
    return {
      dispose: () => {
        this.listeners = this.listeners.filter((l) => l !== listener);
      },
    };
  };

  get hasListeners(): boolean {
    return this.listeners.length > 0;
  }

  emit(value: T): void {
    for (const listener of this.listeners) {
      try {
        listener(value);
      } catch {
        // A listener (metrics, logs) must never change the outcome of the call it observes.
      }
    }
  }
}
