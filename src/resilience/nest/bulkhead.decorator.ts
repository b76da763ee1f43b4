import { SetMetadata } from '@nestjs/common';

export const BULKHEAD_METADATA = 'resilience:bulkhead';

/**
 * Runs an expensive route inside the named pipeline's bulkhead (its
 * `<NAME>_BULKHEAD_*` settings): when every slot and queue place is taken,
 * the client gets 503 with Retry-After at once.
 */
export const Bulkhead = (name: string) => SetMetadata(BULKHEAD_METADATA, name);
