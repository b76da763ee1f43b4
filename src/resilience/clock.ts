/**
 * Time source of the policies. The default reads `performance.now()`; tests
 * use Jest's fake timers, which replace both it and `setTimeout`.
 *
 * @publicApi
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };
