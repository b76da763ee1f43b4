import { FASTIFY_ROUTE_CONFIG_METADATA } from '@nestjs/platform-fastify/constants.js';

type Handler = (...args: never[]) => unknown;

const configOf = (handler: Handler): Record<string, unknown> =>
  (Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, handler) ?? {}) as Record<string, unknown>;

/**
 * Sets one key of a route's Fastify config. Nest copies a handler's route
 * config onto its Fastify route, so hooks that run before the body is read
 * (access rules, rate limits) can act on it. On a class it applies to every
 * method that has no value of its own for that key (method decorators run first).
 */
export function routeConfig(key: string, value: unknown): ClassDecorator & MethodDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor): void => {
    if (descriptor !== undefined) {
      const handler = descriptor.value as Handler;
      Reflect.defineMetadata(FASTIFY_ROUTE_CONFIG_METADATA, { ...configOf(handler), [key]: value }, handler);
      return;
    }
    const prototype = (target as { prototype: Record<string, unknown> }).prototype;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const handler = prototype[name];
      if (name === 'constructor' || typeof handler !== 'function') continue;
      const config = configOf(handler as Handler);
      if (config[key] === undefined) {
        Reflect.defineMetadata(FASTIFY_ROUTE_CONFIG_METADATA, { ...config, [key]: value }, handler);
      }
    }
  };
}
