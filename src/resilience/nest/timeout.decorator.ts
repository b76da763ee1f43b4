import { INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { TimeoutInterceptor } from './timeout.interceptor.js';

export const TIMEOUT_METADATA = 'resilience:timeout-ms';

/**
 * Gives a route a time budget: past it the client gets 504 and the handler's
 * `@RequestSignal()` aborts with a TimeoutError, so its downstream work stops.
 * The interceptor is attached only where the decorator is (routes without it
 * skip Nest's interceptor chain), and first, so a request waiting in a
 * `@Bulkhead` queue still answers 504 on time whichever decorator is written first.
 */
export const Timeout =
  (ms: number): MethodDecorator & ClassDecorator =>
  <T>(target: object, _key?: string | symbol, descriptor?: TypedPropertyDescriptor<T>) => {
    // As SetMetadata does: on the method for a method decorator, else on the class.
    const holder = (descriptor?.value as object | undefined) ?? target;
    Reflect.defineMetadata(TIMEOUT_METADATA, ms, holder);
    const existing = (Reflect.getMetadata(INTERCEPTORS_METADATA, holder) as unknown[] | undefined) ?? [];
    if (!existing.includes(TimeoutInterceptor)) {
      Reflect.defineMetadata(INTERCEPTORS_METADATA, [TimeoutInterceptor, ...existing], holder);
    }
  };
