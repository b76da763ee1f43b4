import { INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { BulkheadInterceptor } from './bulkhead.interceptor.js';

export const BULKHEAD_METADATA = 'resilience:bulkhead';

/**
 * Runs an expensive route inside the named pipeline's bulkhead (its
 * `<NAME>_BULKHEAD_*` settings): when every slot and queue place is taken,
 * the client gets 503 with Retry-After at once. The interceptor is attached
 * only where the decorator is, after any `@Timeout`.
 */
export const Bulkhead =
  (name: string): MethodDecorator & ClassDecorator =>
  <T>(target: object, _key?: string | symbol, descriptor?: TypedPropertyDescriptor<T>) => {
    // As SetMetadata does: on the method for a method decorator, else on the class.
    const holder = (descriptor?.value as object | undefined) ?? target;
    Reflect.defineMetadata(BULKHEAD_METADATA, name, holder);
    const existing = (Reflect.getMetadata(INTERCEPTORS_METADATA, holder) as unknown[] | undefined) ?? [];
    if (!existing.includes(BulkheadInterceptor)) {
      Reflect.defineMetadata(INTERCEPTORS_METADATA, [...existing, BulkheadInterceptor], holder);
    }
  };
