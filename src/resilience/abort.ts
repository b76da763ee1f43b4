import type { Disposable } from './event.js';
import { NEVER_ABORTED } from './policy.js';

interface Subscribers {
  readonly listeners: Set<() => void>;
  readonly dispatch: () => void;
}

/**
 * One real 'abort' listener per signal, fanning out to the callbacks of
 * {@link onAbort}. A long-lived signal shared by many concurrent calls (a
 * shutdown or request signal) would otherwise collect one listener per call
 * and trip Node's MaxListenersExceededWarning past 10.
 */
const subscribers = new WeakMap<AbortSignal, Subscribers>();

/**
 * Calls `listener` once when `signal` aborts; `dispose()` unsubscribes it, and
 * the last one out removes the underlying listener from the signal. Does
 * nothing for an already-aborted signal: check `signal.aborted` first.
 *
 * Like native listeners, one that throws doesn't stop the others; the first
 * error is rethrown from the signal's listener, which Node reports as uncaught.
 *
 * @example
 * const subscription = onAbort(request.signal, () => queue.delete(waiter));
 * try { await slot; } finally { subscription.dispose(); }
 * @publicApi
 */
export function onAbort(signal: AbortSignal, listener: () => void): Disposable {
  if (signal.aborted) return { dispose: () => undefined };
  let entry = subscribers.get(signal);
  if (entry === undefined) {
    const listeners = new Set<() => void>();
    entry = {
      listeners,
      dispatch: () => {
        subscribers.delete(signal);
        const errors: unknown[] = [];
        for (const callback of [...listeners]) {
          // One disposed by an earlier callback during this dispatch must not run.
          if (!listeners.delete(callback)) continue;
          try {
            callback();
          } catch (error) {
            errors.push(error);
          }
        }
        if (errors.length > 0) throw errors[0];
      },
    };
    subscribers.set(signal, entry);
    signal.addEventListener('abort', entry.dispatch, { once: true });
  }
  const current = entry;
  current.listeners.add(listener);
  return {
    dispose: () => {
      if (!current.listeners.delete(listener) || current.listeners.size > 0) return;
      signal.removeEventListener('abort', current.dispatch);
      if (subscribers.get(signal) === current) subscribers.delete(signal);
    },
  };
}

/** A child controller linked to a parent signal; see {@link deriveSignal}. */
export interface DerivedSignal extends Disposable {
  /** Abort this to stop the child's work without touching the parent. */
  readonly controller: AbortController;
  /** Shorthand for `controller.signal`. */
  readonly signal: AbortSignal;
  /** Unlinks the child from the parent; idempotent. A property, so it can be destructured. */
  readonly dispose: () => void;
}

/**
 * Creates a child `AbortController` that aborts, with the parent's `reason`
 * unchanged, when the parent aborts; aborting the child never affects the
 * parent. An already-aborted parent yields an already-aborted child.
 *
 * Always call `dispose()` when the work is done: it unlinks the child from the
 * parent, which is often long-lived (a request's or the app's signal).
 * `AbortSignal.any` is avoided on purpose: its links are only released by GC,
 * which has leaked on Node 20.
 *
 * @example
 * const { signal, controller, dispose } = deriveSignal(request.signal);
 * const timer = setTimeout(() => controller.abort(new Error('too slow')), 1_000);
 * try {
 *   return await fetch(url, { signal });
 * } finally {
 *   clearTimeout(timer);
 *   dispose();
 * }
 * @publicApi
 */
export function deriveSignal(parent: AbortSignal = NEVER_ABORTED): DerivedSignal {
  const controller = new AbortController();
  if (parent.aborted) controller.abort(parent.reason);
  const link = onAbort(parent, () => {
    controller.abort(parent.reason);
  });
  return {
    controller,
    signal: controller.signal,
    dispose: () => {
      link.dispose();
    },
  };
}
