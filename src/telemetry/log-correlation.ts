/** Trace and span id of the active span, as written on log lines. */
export interface TraceLogFields {
  readonly traceId: string;
  readonly spanId: string;
}

type TraceLogSource = () => TraceLogFields | undefined;

let source: TraceLogSource | undefined;

/**
 * The logger asks this for the active span's ids on every line. It holds no
 * OpenTelemetry import: tracing installs the source when it starts, so with
 * tracing off a log line costs one undefined check.
 */
export function currentTraceLogFields(): TraceLogFields | undefined {
  return source?.();
}

export function setTraceLogSource(next: TraceLogSource | undefined): void {
  source = next;
}
