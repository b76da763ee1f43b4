import { BulkheadInterceptor } from './bulkhead.interceptor.js';
import { routeInterceptor } from './route-interceptor.js';

export const BULKHEAD_METADATA = 'resilience:bulkhead';

/**
 * Runs an expensive route inside the named pipeline's bulkhead (its
 * `<NAME>_BULKHEAD_*` settings): when every slot and queue place is taken,
 * the client gets 503 with Retry-After at once. Runs inside any `@Timeout`.
 */
export const Bulkhead = (name: string) => routeInterceptor(BULKHEAD_METADATA, name, BulkheadInterceptor, 'last');
