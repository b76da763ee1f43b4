import type { NestInterceptor, Type } from '@nestjs/common';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';

/**
 * A decorator that stores `value` under `metadataKey` and attaches `interceptor`
 * to the decorated route or controller only (undecorated routes skip Nest's
 * interceptor chain), once, first or last among its interceptors whichever
 * order the decorators are written in.
 */
export function routeInterceptor(
  metadataKey: string,
  value: unknown,
  interceptor: Type<NestInterceptor>,
  position: 'first' | 'last',
): MethodDecorator & ClassDecorator {
  return <T>(target: object, _key?: string | symbol, descriptor?: TypedPropertyDescriptor<T>) => {
    // As SetMetadata does: on the method for a method decorator, else on the class.
    const holder = (descriptor?.value as object | undefined) ?? target;
    Reflect.defineMetadata(metadataKey, value, holder);
    const existing = (Reflect.getMetadata(INTERCEPTORS_METADATA, holder) as unknown[] | undefined) ?? [];
    if (existing.includes(interceptor)) return;
    const next = position === 'first' ? [interceptor, ...existing] : [...existing, interceptor];
    Reflect.defineMetadata(INTERCEPTORS_METADATA, next, holder);
  };
}
