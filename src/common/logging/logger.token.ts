/** DI token of the root pino logger. */
export const PINO_LOGGER = Symbol('PINO_LOGGER');
