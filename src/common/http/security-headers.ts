import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The headers helmet sets for these options, worked out once at boot. With
 * static options they never depend on the request, and running helmet's
 * middleware per request (parsing its CSP directives each time) was a
 * measurable share of a cheap route's CPU (BENCHMARKS.md).
 */
export function securityHeaders(options: HelmetOptions): Readonly<Record<string, string>> {
  const headers = new Map<string, string>();
  const response = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
    },
    removeHeader(name: string) {
      headers.delete(name.toLowerCase());
    },
  };
  const state = { finished: false };
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    if (error instanceof Error) throw error;
    state.finished = true;
  });
  // helmet's middleware is synchronous; anything else would mean headers computed per request.
  if (!state.finished) throw new Error('helmet did not set its headers synchronously');
  return Object.freeze(Object.fromEntries(headers));
}
