import { diag, DiagLogLevel, isSpanContextValid, trace, type DiagLogger } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_HTTP_ROUTE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import type { LevelWithSilent } from 'pino';
import { createLogger } from '../common/logging/logger.factory.js';
import { setTraceLogSource } from './log-correlation.js';
import { otlpTracesUrl } from './otlp-url.js';
import type { TracingHandle } from './tracing.js';

export interface OpenTelemetrySettings {
  readonly endpoint: string;
  readonly serviceName: string;
  readonly sampleRatio: number;
}

/** Probes and scrapes would only bury the traces worth reading. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

/** Fastify's channel as a route handler starts, and the part of its message used here. */
const HANDLER_START_CHANNEL = 'tracing:fastify.request.handler:start';
interface FastifyHandlerStart {
  readonly request?: { readonly raw?: IncomingMessage };
  readonly route?: { readonly url?: string };
}

/**
 * Registers the tracer provider (W3C trace context, AsyncLocalStorage
 * context), exports spans in batches over OTLP/HTTP JSON, patches `http`
 * (the Fastify server) and `pg` (queries and pool connects under a request's
 * span), and follows undici's diagnostics channels for the upstream calls
 * (client spans that also inject `traceparent`).
 */
export function startOpenTelemetry(settings: OpenTelemetrySettings, logLevel: LevelWithSilent): TracingHandle {
  const log = createLogger(logLevel).child({ component: 'opentelemetry' });
  const toLog =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]) => {
      log[level]({ args: args.length > 0 ? args : undefined }, message);
    };
  const diagLogger: DiagLogger = {
    error: toLog('error'),
    warn: toLog('warn'),
    info: toLog('info'),
    debug: toLog('debug'),
    verbose: toLog('trace'),
  };
  // Export failures (collector down) surface as warnings rather than vanish.
  diag.setLogger(diagLogger, DiagLogLevel.WARN);

  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    // A caller's sampled flag wins; new traces are sampled at the ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpTracesUrl(settings.endpoint) }))],
  });
  provider.register();

  // Fastify names the matched route (`/profiles/:userId`) on its diagnostics
  // channel; the server span takes it as http.route and its name when it ends.
  const routes = new WeakMap<object, string>();
  const onHandlerStart = (message: unknown): void => {
    const { request, route } = message as FastifyHandlerStart;
    if (request?.raw !== undefined && route?.url !== undefined) routes.set(request.raw, route.url);
  };
  subscribe(HANDLER_START_CHANNEL, onHandlerStart);

  const disableInstrumentations = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
        // Outgoing calls are traced inside a request (upstreams), not on their own.
        requireParentforOutgoingSpans: true,
        applyCustomAttributesOnSpan: (span, request) => {
          const route = routes.get(request);
          if (route === undefined) return;
          span.setAttribute(ATTR_HTTP_ROUTE, route);
          span.updateName(`${(request as IncomingMessage).method ?? 'GET'} ${route}`);
        },
      }),
      // Without a parent span, the outbox worker's polling would be a root trace every 500 ms.
      new PgInstrumentation({ requireParentSpan: true }),
      // The upstream calls (undici pools): traced inside a request only, like outgoing http.
      new UndiciInstrumentation({ requireParentforSpans: true }),
    ],
  });

  setTraceLogSource(() => {
    const span = trace.getActiveSpan();
    if (span === undefined) return undefined;
    const { traceId, spanId } = span.spanContext();
    return isSpanContextValid(span.spanContext()) ? { traceId, spanId } : undefined;
  });
  log.info({ endpoint: otlpTracesUrl(settings.endpoint), serviceName: settings.serviceName }, 'tracing started');

  return {
    shutdown: async () => {
      setTraceLogSource(undefined);
      unsubscribe(HANDLER_START_CHANNEL, onHandlerStart);
      disableInstrumentations();
      await provider.shutdown();
    },
  };
}
