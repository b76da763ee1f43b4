/**
 * The OTLP/HTTP traces URL under a collector base URL, as the OTLP exporter
 * specification builds it from `OTEL_EXPORTER_OTLP_ENDPOINT`.
 */
export function otlpTracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}
