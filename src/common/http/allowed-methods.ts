import type { FastifyInstance } from 'fastify';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * For a request no route matched: the methods its path does answer (for a 405
 * with `Allow`), or none when the path itself is unknown (a 404).
 */
export function allowedMethods(server: FastifyInstance, method: string, path: string): string[] {
  return METHODS.filter((m) => {
    // Typed as always found, but null when nothing matches.
    const route: unknown = server.findRoute({ method: m, url: path });
    return m !== method && route !== null;
  });
}
