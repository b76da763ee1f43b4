import { types } from 'node:util';

/**
 * `instanceof Error` fails for errors made in another realm (Node's own
 * socket errors seen from a vm context, as under Jest); the native check does not.
 */
export const isError = (value: unknown): value is Error => value instanceof Error || types.isNativeError(value);

const UNAVAILABLE_SQLSTATE_PREFIXES = ['08', '57P', '53'];
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);
const UNAVAILABLE_MESSAGES = [
  'timeout exceeded when trying to connect',
  'connection terminated',
  'connection timeout',
  'cannot use a pool after calling end',
  'client has encountered a connection error',
  'driver not connected',
  'statement timeout',
  'canceling statement due to statement timeout',
];

/**
 * True when an error means "the database cannot answer right now" (connection
 * refused or lost, pool timeout, server shutting down, statement timeout), as
 * opposed to a bug or a constraint violation.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && isError(current); depth++) {
    const e = current as Error & { code?: unknown; driverError?: unknown };
    if (typeof e.code === 'string') {
      if (UNAVAILABLE_NODE_CODES.has(e.code)) return true;
      if (e.code === '57014') return true; // query_canceled (statement_timeout)
      if (UNAVAILABLE_SQLSTATE_PREFIXES.some((p) => (e.code as string).startsWith(p))) return true;
    }
    const message = e.message.toLowerCase();
    if (UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true;
    current = e.driverError ?? e.cause;
  }
  return false;
}

/** SQLSTATE of a unique violation, and the constraint that failed. */
export function uniqueViolation(error: unknown): string | undefined {
  const e = error as { code?: unknown; constraint?: unknown; driverError?: { code?: unknown; constraint?: unknown } };
  const code = e.code ?? e.driverError?.code;
  if (code !== '23505') return undefined;
  const constraint = e.constraint ?? e.driverError?.constraint;
  return typeof constraint === 'string' ? constraint : '';
}
