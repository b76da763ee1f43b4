import type { FastifyInstance } from 'fastify';
import type { LivenessSnapshot } from './liveness.snapshot.js';

/**
 * `GET /health` as a plain Fastify route: it writes the snapshot's prepared
 * bytes and does nothing else (no Nest pipeline, no indicator run per probe).
 * The app-wide hooks still apply: request id, security headers, metrics.
 */
export function registerLivenessRoute(fastify: FastifyInstance, snapshot: LivenessSnapshot): void {
  fastify.get('/health', { config: { rateLimit: 'skip', access: { kind: 'public' } } }, (_request, reply) => {
    void reply.header('cache-control', 'no-store').type('application/json; charset=utf-8');
    return reply.send(snapshot.bytes);
  });
}
