import { SetMetadata } from '@nestjs/common';

export const TIMEOUT_METADATA = 'resilience:timeout-ms';

/**
 * Gives a route a time budget: past it the client gets 504 and the handler's
 * `@RequestSignal()` aborts with a TimeoutError, so its downstream work stops.
 */
export const Timeout = (ms: number) => SetMetadata(TIMEOUT_METADATA, ms);
