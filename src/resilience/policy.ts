/**
 * The shape every resilience policy shares, after cockatiel's `IPolicy`:
 * `execute(fn, signal)` runs `fn` under the policy and hands it an
 * `AbortSignal` that fires when the work should stop (caller cancelled,
 * attempt timed out, deadline passed). The signal's `reason` is always the
 * typed error that explains why, so stacked policies keep it intact.
 *
 * @publicApi
 */
export interface PolicyContext {
  readonly signal: AbortSignal;
}

export interface Policy {
  execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal?: AbortSignal): Promise<T>;
}

/** A signal that never aborts, for callers that have none. */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/**
 * Composes policies outermost first: `wrap(a, b, c).execute(fn)` runs
 * `a(b(c(fn)))`, each inner policy getting the signal its outer one derived.
 *
 * @example
 * const pipeline = wrap(bulkhead, breaker, retry, attemptTimeout);
 * await pipeline.execute(({ signal }) => fetch(url, { signal }), request.signal);
 * @publicApi
 */
export function wrap(...policies: Policy[]): Policy {
  return {
    execute<T>(fn: (context: PolicyContext) => Promise<T> | T, signal: AbortSignal = NEVER_ABORTED): Promise<T> {
      const run = (index: number, current: AbortSignal): Promise<T> => {
        const policy = policies[index];
        if (policy === undefined) return Promise.resolve().then(() => fn({ signal: current }));
        return policy.execute(({ signal: inner }) => run(index + 1, inner), current);
      };
      return run(0, signal);
    },
  };
}
