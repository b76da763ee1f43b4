import type { AppConfig } from '../config/app-config.js';
import { withTimeout } from '../common/async/with-timeout.js';

/** A running tracer; `shutdown()` exports the spans still buffered and stops. */
export interface TracingHandle {
  shutdown(): Promise<void>;
}

/** How long shutdown waits for the last spans to reach the collector. */
const FLUSH_TIMEOUT_MS = 5000;

/**
 * Starts OpenTelemetry when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; otherwise
 * returns undefined having loaded nothing. Call it before anything imports
 * `http` or `pg`: their instrumentation patches them as they load.
 */
export async function startTracing(config: AppConfig): Promise<TracingHandle | undefined> {
  if (config.tracing.endpoint === undefined) return undefined;
  // The SDK is imported only here, so a service without tracing never loads it.
  const { startOpenTelemetry } = await import('./open-telemetry.js');
  return startOpenTelemetry({ ...config.tracing, endpoint: config.tracing.endpoint }, config.log.level);
}

/**
 * An exit function for graceful shutdown that first flushes the tracer's
 * buffered spans (bounded, so an unreachable collector cannot hold the exit).
 */
export function exitAfterTracing(
  tracing: TracingHandle | undefined,
  exit: (code: number) => void = (code) => process.exit(code),
): (code: number) => void {
  if (tracing === undefined) return exit;
  return (code) => {
    withTimeout(tracing.shutdown(), FLUSH_TIMEOUT_MS, 'tracing flush').then(
      () => exit(code),
      (error: unknown) => {
        process.stderr.write(`tracing flush failed: ${error instanceof Error ? error.message : String(error)}\n`);
        exit(code);
      },
    );
  };
}
