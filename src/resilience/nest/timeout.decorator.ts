import { routeInterceptor } from './route-interceptor.js';
import { TimeoutInterceptor } from './timeout.interceptor.js';

export const TIMEOUT_METADATA = 'resilience:timeout-ms';

/**
 * Gives a route a time budget: past it the client gets 504 and the handler's
 * `@RequestSignal()` aborts with a TimeoutError, so its downstream work stops.
 * Its interceptor runs first, so a request waiting in a `@Bulkhead` queue
 * still answers 504 on time.
 */
export const Timeout = (ms: number) => routeInterceptor(TIMEOUT_METADATA, ms, TimeoutInterceptor, 'first');
