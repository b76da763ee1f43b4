import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { Bulkhead, BULKHEAD_METADATA } from './bulkhead.decorator.js';
import { BulkheadInterceptor } from './bulkhead.interceptor.js';
import { Timeout, TIMEOUT_METADATA } from './timeout.decorator.js';
import { TimeoutInterceptor } from './timeout.interceptor.js';

class Routes {
  @Timeout(100)
  @Bulkhead('posts')
  timeoutWrittenFirst(): void {}

  @Bulkhead('posts')
  @Timeout(100)
  bulkheadWrittenFirst(): void {}

  @Timeout(50)
  @Timeout(100)
  twice(): void {}

  plain(): void {}
}

@Bulkhead('comments')
class DecoratedController {}

const interceptorsOf = (target: object): unknown => Reflect.getMetadata(INTERCEPTORS_METADATA, target);
/** The route's function itself, where method decorators keep their metadata. */
const route = (name: keyof Routes): object => Object.getOwnPropertyDescriptor(Routes.prototype, name)?.value as object;

describe('@Timeout and @Bulkhead', () => {
  it('put the timeout outside the bulkhead whichever is written first', () => {
    expect(interceptorsOf(route('timeoutWrittenFirst'))).toEqual([TimeoutInterceptor, BulkheadInterceptor]);
    expect(interceptorsOf(route('bulkheadWrittenFirst'))).toEqual([TimeoutInterceptor, BulkheadInterceptor]);
    expect(Reflect.getMetadata(TIMEOUT_METADATA, route('bulkheadWrittenFirst'))).toBe(100);
    expect(Reflect.getMetadata(BULKHEAD_METADATA, route('bulkheadWrittenFirst'))).toBe('posts');
  });

  it('attach an interceptor once, the outermost decorator setting the value', () => {
    expect(interceptorsOf(route('twice'))).toEqual([TimeoutInterceptor]);
    expect(Reflect.getMetadata(TIMEOUT_METADATA, route('twice'))).toBe(50);
  });

  it('leave undecorated routes without interceptors, and work on a controller class', () => {
    expect(interceptorsOf(route('plain'))).toBeUndefined();
    expect(interceptorsOf(DecoratedController)).toEqual([BulkheadInterceptor]);
    expect(Reflect.getMetadata(BULKHEAD_METADATA, DecoratedController)).toBe('comments');
  });
});
