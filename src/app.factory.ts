import 'reflect-metadata';
import type { Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { LogController, type FastifyBaseLogger, type FastifyRequest } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import { AppModule } from './app.module.js';
import {
  rateLimitClientOf,
  registerAccessCheck,
  registerAuthentication,
  registerAuthorization,
} from './auth/access.hooks.js';
import { Authenticator } from './auth/authenticator.js';
import { ChatUpgradeAuthenticator } from './chat/chat-upgrade.authenticator.js';
import { ChatWsAdapter } from './chat/chat-ws.adapter.js';
import { registerRawJsonRoute } from './compute/raw-body.route.js';
import { REQUEST_ID_HEADER, requestIdFor } from './common/http/request-id.js';
import { AppException } from './common/errors/app.exception.js';
import { sendProblem } from './common/errors/problem-details.filter.js';
import { clientErrorHandler, frameworkErrorHandler } from './common/http/framework-errors.js';
import { securityHeaders } from './common/http/security-headers.js';
import { requestContext, type RequestContext } from './common/http/request-context.js';
import { ShutdownState } from './common/lifecycle/shutdown-state.js';
import { createLogger } from './common/logging/logger.factory.js';
import { PinoNestLogger } from './common/logging/pino-nest.logger.js';
import type { AppConfig } from './config/app-config.js';
import { setupOpenApi } from './docs/openapi.js';
import { registerRequestLog } from './common/logging/request-log.js';
import { LivenessSnapshot } from './health/liveness.snapshot.js';
import { registerLivenessRoute } from './health/liveness.route.js';
import { HttpRateLimiter } from './resilience/nest/http-rate-limiter.js';
import { registerLoadShedding } from './resilience/nest/load-shedding.js';
import { registerRateLimitHook } from './resilience/nest/rate-limit.hook.js';
import { registerHttpMetrics } from './metrics/http.metrics.js';
import { MetricsRegistry } from './metrics/metrics.registry.js';

export interface CreateAppOptions {
  /** Where log lines go (defaults to stdout); tests pass a stream to read them. */
  readonly logDestination?: DestinationStream;
  /** Extra Nest modules to mount (tests only). */
  readonly extraImports?: readonly Type[];
}

const SHUTTING_DOWN = new AppException('service_unavailable', 'The server is shutting down; retry shortly', {
  headers: { 'retry-after': '1', connection: 'close' },
});

const MISSING_HOST = new AppException('bad_request', 'An HTTP/1.1 request must carry a Host header');

const contextOf = new WeakMap<FastifyRequest, RequestContext>();

/** Whether Fastify will read a body for this request (what its content-type parser would see). */
const hasBody = (request: FastifyRequest): boolean => {
  const headers = request.headers;
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0';
};

/**
 * Builds the whole application on Fastify, initialised but not listening.
 * main.ts and the end-to-end tests both start from here, so tests drive the
 * app exactly as shipped.
 */
export async function createApp(
  config: AppConfig,
  options: CreateAppOptions = {},
): Promise<{ app: NestFastifyApplication; logger: Logger; metrics: MetricsRegistry }> {
  const logger = createLogger(config.log.level, options.logDestination);
  const metrics = MetricsRegistry.create();
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // One logger for everything: the mixin adds reqId, so no per-request child is needed.
    childLoggerFactory: (parent: FastifyBaseLogger) => parent,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestIdFor,
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy === false ? false : config.http.trustProxy,
    // Requests arriving once close() has begun get the problem-document 503 below, not Fastify's plain one.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler(logger),
    // Node would answer a missing Host with a bare 400; the first hook answers it as a problem document.
    http: { requireHostHeader: false },
    clientErrorHandler: clientErrorHandler(logger),
    forceCloseConnections: 'idle',
    // No Nest middleware is used (hooks do that work), so @fastify/middie's per-request hook is left out.
    skipMiddie: true,
  });
  const fastify = adapter.getInstance();
  // A JSON API: a text/plain body is a 415, not a string for validation to puzzle over.
  fastify.removeContentTypeParser('text/plain');

  const security = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
      },
    },
  });
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.headers(security);
    void reply.header(REQUEST_ID_HEADER, request.id);
    if (closing) {
      sendProblem(SHUTTING_DOWN, request, reply, logger);
      return;
    }
    if (request.headers.host === undefined && request.raw.httpVersionMinor === 1) {
      sendProblem(MISSING_HOST, request, reply, logger);
      return;
    }
    const context: RequestContext = { requestId: request.id };
    // One AsyncLocalStorage entry per request: a request with a body enters it after parsing
    // (parsing resumes on the socket's async context), any other right here, for its whole life.
    if (hasBody(request)) {
      contextOf.set(request, context);
      done();
      return;
    }
    requestContext.run(context, done);
  });
  fastify.addHook('preHandler', (request, _reply, done) => {
    const context = contextOf.get(request);
    if (context === undefined) {
      done();
      return;
    }
    requestContext.run(context, done);
  });
  // All before the body is read, so a refused request never reaches the parser: the credential is
  // verified first (so a verified caller draws from their own bucket), the rule applied after the limiter
  // (so a flood of bad credentials is charged to its address).
  registerAccessCheck(fastify);
  let authenticator: Authenticator | undefined = undefined;
  registerAuthentication(fastify, () => authenticator);
  let rateLimiter: HttpRateLimiter | undefined = undefined;
  registerRateLimitHook(fastify, {
    enabled: config.rateLimit.enabled,
    limiter: () => rateLimiter,
    clientOf: rateLimitClientOf,
  });
  registerAuthorization(fastify, { publicReads: config.auth.publicReads });
  registerRequestLog(fastify, logger, config.log);
  // While draining, every answer closes its connection: a request in flight at SIGTERM
  // must not leave a kept-alive socket that holds shutdown for the whole grace period.
  let draining = (): boolean => false;
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (draining()) void reply.header('connection', 'close');
    done(null, payload);
  });
  registerHttpMetrics(fastify, metrics);
  registerRawJsonRoute(fastify, config.workerPool.processDataBodyLimitBytes);

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({ config, logger, metrics, extraImports: options.extraImports ?? [] }),
    adapter,
    {
      logger: new PinoNestLogger(logger),
      abortOnError: false,
    },
  );

  const shutdownState = app.get(ShutdownState);
  draining = () => shutdownState.draining;
  rateLimiter = app.get(HttpRateLimiter);
  authenticator = app.get(Authenticator);
  registerLivenessRoute(fastify, app.get(LivenessSnapshot));

  // Raw WebSockets (the chat at /ws) on the same server and port as HTTP.
  // The chat's upgrades are authenticated before they happen (a bad token is a 401, not a socket).
  const upgrades = app.get(ChatUpgradeAuthenticator);
  app.useWebSocketAdapter(new ChatWsAdapter(app, (request) => upgrades.authenticate(request)));
  await registerLoadShedding(app, config);
  if (config.http.corsOrigins !== null) {
    app.enableCors({
      origin: config.http.corsOrigins === '*' ? true : [...config.http.corsOrigins],
      exposedHeaders: [REQUEST_ID_HEADER, 'retry-after'],
    });
  }
  if (config.http.docsEnabled) {
    setupOpenApi(app);
  }
  try {
    await app.init();
  } catch (error) {
    // A failed boot (a route without an access rule, a bad migration) must not leave the database open.
    await app.close().catch(() => undefined);
    throw error;
  }
  return { app, logger, metrics };
}
