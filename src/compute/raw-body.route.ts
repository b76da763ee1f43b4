import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest, preParsingHookHandler } from 'fastify';

/** The route whose body reaches the handler as raw bytes, for a worker to parse. */
export const PROCESS_DATA_PATH = '/process-data';
/** Private media type: only requests marked by the route's own hook may use its parser. */
const RAW_JSON = 'application/x-raw-json';

const marked = new WeakSet<object>();

/** Fastify's own error shape, so the problem mapper answers 415 `unsupported_media_type`. */
const unsupportedMediaType = (contentType: string): Error =>
  Object.assign(new Error(`Unsupported Media Type: ${contentType}`), {
    code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    statusCode: 415,
  });

const isJson = (contentType: string | undefined): boolean =>
  contentType?.split(';')[0]?.trim().toLowerCase() === 'application/json';

/**
 * Scopes two things to POST /process-data only, on the root Fastify instance
 * (call before Nest registers its routes): a larger body limit, and the body
 * kept as a Buffer instead of JSON-parsed on the event loop. A `preParsing`
 * hook of that route renames `application/json` to a private media type whose
 * parser returns the bytes. Any other content type on that route is 415 (even
 * text/plain, which Fastify would parse), and so is the private type sent by a
 * client to any route.
 */
export function registerRawJsonRoute(fastify: FastifyInstance, bodyLimitBytes: number): void {
  const toRaw: preParsingHookHandler = (request, _reply, payload, done) => {
    const contentType = request.headers['content-type'];
    if (contentType === undefined) {
      done(null, payload); // Fastify's own rules: no body passes, a body without a type is 415
    } else if (isJson(contentType)) {
      request.headers['content-type'] = RAW_JSON;
      marked.add(request.raw);
      done(null, payload);
    } else {
      // Fastify parses text/plain by default; this route takes JSON only.
      done(unsupportedMediaType(contentType));
    }
  };
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (route.url !== PROCESS_DATA_PATH || !methods.includes('POST')) return;
    route.bodyLimit = bodyLimitBytes;
    const existing = route.preParsing === undefined ? [] : [route.preParsing].flat();
    route.preParsing = [...existing, toRaw];
  });
  fastify.addContentTypeParser(RAW_JSON, { parseAs: 'buffer' }, (request, body, done) => {
    if (!marked.has(request.raw)) {
      done(unsupportedMediaType(RAW_JSON));
      return;
    }
    done(null, body);
  });
}

/** The request body as the raw-body route received it: a Buffer (never validated by the global pipe). */
export const RawBody = createParamDecorator((_data: unknown, ctx: ExecutionContext): Buffer => {
  const body = ctx.switchToHttp().getRequest<FastifyRequest>().body;
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
});
