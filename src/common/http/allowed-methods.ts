import type { FastifyInstance } from 'fastify';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * For a request no route matched: the methods its path does answer (for a 405
 * with `Allow`), or none when the path itself is unknown (a 404).
 */
export function allowedMethods(server: FastifyInstance, method: string, path: string): string[] {
  const serves = (m: string): boolean => {
    // Typed as always found, but null when nothing matches.
    const route = server.findRoute({ method: m, url: path }) as { params?: Record<string, unknown> } | null;
    // The router's lookup matches an empty parameter (`/users/` for `/users/:id`) that routing does not serve.
    return route !== null && Object.values(route.params ?? {}).every((v) => v !== '');
  };
  // A route for this very method answered 404 itself (a static file that is not there): not a 405.
  if (serves(method)) return [];
  return METHODS.filter((m) => m !== method && serves(m));
}
