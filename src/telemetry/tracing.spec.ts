import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../config/config.error.js';
import { parseConfig } from '../config/load-config.js';
import { currentTraceLogFields, setTraceLogSource } from './log-correlation.js';
import { otlpTracesUrl } from './otlp-url.js';
import { exitAfterTracing, startTracing, type TracingHandle } from './tracing.js';

describe('tracing configuration', () => {
  it('is off by default, with the documented service name and ratio', () => {
    expect(parseConfig({}).tracing).toEqual({ endpoint: undefined, serviceName: 'nest-async-api', sampleRatio: 1 });
    // `OTEL_EXPORTER_OTLP_ENDPOINT=` in a .env file means unset.
    expect(parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }).tracing.endpoint).toBeUndefined();
  });

  it('reads the endpoint, service name and ratio', () => {
    const config = parseConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_SERVICE_NAME: 'api-eu',
      OTEL_TRACES_SAMPLER_RATIO: '0.25',
    });
    expect(config.tracing).toEqual({ endpoint: 'http://collector:4318', serviceName: 'api-eu', sampleRatio: 0.25 });
  });

  it('refuses a non-HTTP endpoint and a ratio outside 0..1 in one line', () => {
    expect(() => parseConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317' })).toThrow(
      new ConfigError(
        'Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must be a http:// or https:// URL (got "grpc://collector:4317")',
      ),
    );
    expect(() => parseConfig({ OTEL_TRACES_SAMPLER_RATIO: '1.5' })).toThrow(
      'OTEL_TRACES_SAMPLER_RATIO must be a number between 0 and 1',
    );
  });
});

describe('otlpTracesUrl', () => {
  it('appends /v1/traces to the base URL, with or without a trailing slash or a path', () => {
    expect(otlpTracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(otlpTracesUrl('http://collector:4318/')).toBe('http://collector:4318/v1/traces');
    expect(otlpTracesUrl('https://gw.example/otlp/')).toBe('https://gw.example/otlp/v1/traces');
  });
});

describe('startTracing', () => {
  it('returns nothing and installs no log source when the endpoint is unset', async () => {
    expect(await startTracing(parseConfig({}))).toBeUndefined();
    expect(currentTraceLogFields()).toBeUndefined();
  });
});

describe('currentTraceLogFields', () => {
  it('asks the installed source, and nothing once it is removed', () => {
    setTraceLogSource(() => ({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }));
    try {
      expect(currentTraceLogFields()).toEqual({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
    } finally {
      setTraceLogSource(undefined);
    }
    expect(currentTraceLogFields()).toBeUndefined();
  });
});

describe('exitAfterTracing', () => {
  it('exits at once without tracing', () => {
    const codes: number[] = [];
    exitAfterTracing(undefined, (code) => codes.push(code))(3);
    expect(codes).toEqual([3]);
  });

  it('flushes the tracer before exiting with the same code', async () => {
    const events: string[] = [];
    let flushed!: () => void;
    const tracing: TracingHandle = {
      shutdown: () => {
        events.push('flush started');
        return new Promise<void>((resolve) => (flushed = resolve));
      },
    };
    const exited = new Promise<void>((resolve) => {
      exitAfterTracing(tracing, (code) => {
        events.push(`exit ${String(code)}`);
        resolve();
      })(0);
    });
    expect(events).toEqual(['flush started']);
    flushed();
    await exited;
    expect(events).toEqual(['flush started', 'exit 0']);
  });

  it('still exits when the flush fails', async () => {
    const tracing: TracingHandle = { shutdown: () => Promise.reject(new Error('collector unreachable')) };
    const write = process.stderr.write.bind(process.stderr);
    const written: string[] = [];
    process.stderr.write = (chunk: string) => {
      written.push(chunk);
      return true;
    };
    try {
      const code = await new Promise<number>((resolve) => exitAfterTracing(tracing, resolve)(1));
      expect(code).toBe(1);
    } finally {
      process.stderr.write = write;
    }
    expect(written).toEqual(['tracing flush failed: collector unreachable\n']);
  });
});
