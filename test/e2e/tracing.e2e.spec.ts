import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAppProcess, type AppProcess } from '../support/app-process.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';
import { adminJson } from '../support/tokens.js';

/**
 * OpenTelemetry, end to end: the built service runs as its own process (the
 * instrumentation patches `http` and `pg` for the whole process, which a
 * Jest VM would not show) and exports over OTLP/HTTP to a receiver in this
 * test. A preload probe in the child reports every `@opentelemetry/*` module
 * it loads, so "off" is checked as "nothing of the SDK loaded", not just
 * "nothing sent".
 */

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
}

interface ReceivedSpan extends OtlpSpan {
  scope: string;
  serviceName: string | undefined;
}

const attr = (attributes: OtlpAttribute[] | undefined, key: string): string | undefined => {
  const value = attributes?.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : String(value.intValue));
};

/** A minimal OTLP/HTTP JSON collector: POST /v1/traces. */
class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly paths: string[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      this.paths.push(`${req.method ?? ''} ${req.url ?? ''} ${req.headers['content-type'] ?? ''}`);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resourceSpans of body.resourceSpans ?? []) {
        const serviceName = attr(resourceSpans.resource?.attributes, 'service.name');
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            this.spans.push({ ...span, scope: scopeSpans.scope?.name ?? '', serviceName });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * NODE_OPTIONS for the child: a preload that writes `otel-load <name>` to
 * stderr for every @opentelemetry module imported (ESM resolve hook) or
 * required (CommonJS), whoever asks for it.
 */
function otelLoadProbe(): string {
  const hook = `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@opentelemetry/')) process.stderr.write('otel-load ' + specifier + '\\n');
  return next(specifier, context);
}`;
  // Worker threads inherit NODE_OPTIONS; the probe watches the main thread only.
  const preload = `import Module, { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
if (isMainThread) {
  register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});
  const load = Module._load;
  Module._load = function (request, ...rest) {
    if (typeof request === 'string' && request.startsWith('@opentelemetry/')) process.stderr.write('otel-load ' + request + '\\n');
    return load.call(this, request, ...rest);
  };
}`;
  return `--import=data:text/javascript,${encodeURIComponent(preload)}`;
}

/** The JSON log lines of a process's output (the probe's lines are not JSON). */
function logLines(app: AppProcess): Record<string, unknown>[] {
  return app
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

async function startService(env: Record<string, string>): Promise<{ app: AppProcess; drop: () => Promise<void> }> {
  const db = await createTestDatabase(externalDatabaseUrl());
  const app = await startAppProcess(
    {
      LOG_LEVEL: 'info',
      NODE_OPTIONS: otelLoadProbe(),
      ...(db.url !== undefined ? { DATABASE_URL: db.url } : { PGLITE_DATA_DIR: 'memory://' }),
      ...env,
    },
    // The probe's loader hook slows every import a little; a loaded CI machine needs the margin.
    { readyTimeoutMs: 90_000 },
  );
  return { app, drop: db.drop };
}

async function createUser(app: AppProcess, email: string): Promise<number> {
  const res = await fetch(`${app.url}/users`, {
    method: 'POST',
    headers: adminJson,
    body: JSON.stringify({ name: 'Traced', email }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

describe('tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  const receiver = new OtlpReceiver();
  let service: { app: AppProcess; drop: () => Promise<void> } | undefined;
  const callerTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpanId = '00f067aa0ba902b7';

  beforeAll(async () => {
    service = await startService({
      OTEL_EXPORTER_OTLP_ENDPOINT: `${await receiver.start()}/`,
      OTEL_SERVICE_NAME: 'tracing-e2e',
      // Only the shutdown flush can deliver within this test.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
  }, 120_000);

  afterAll(async () => {
    await service?.app.stop();
    await service?.drop();
    await receiver.close();
  });

  it('exports a request as one trace (server, database and upstream spans), continues traceparent, stamps logs, and flushes at SIGTERM', async () => {
    const { app } = service!;
    const userId = await createUser(app, 'traced@example.com');
    const res = await fetch(`${app.url}/profiles/${String(userId)}`, {
      headers: { traceparent: `00-${callerTraceId}-${callerSpanId}-01`, 'x-request-id': 'tracing-e2e-profile' },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { degraded: string[] }).degraded).toEqual([]);

    // Nothing is exported before shutdown (the batch delay is ten minutes)...
    expect(receiver.paths).toEqual([]);
    expect(await app.stop()).toBe(0);
    // ...and everything once SIGTERM has flushed the batch, as OTLP/HTTP JSON.
    expect(receiver.paths.length).toBeGreaterThan(0);
    for (const path of receiver.paths) expect(path).toBe('POST /v1/traces application/json');
    expect(new Set(receiver.spans.map((s) => s.serviceName))).toEqual(new Set(['tracing-e2e']));

    const trace = receiver.spans.filter((s) => s.traceId === callerTraceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const isUnder = (span: OtlpSpan, ancestor: OtlpSpan): boolean => {
      for (let p = span.parentSpanId; p !== undefined && p !== ''; p = byId.get(p)?.parentSpanId) {
        if (p === ancestor.spanId) return true;
      }
      return false;
    };

    // The server span continues the caller's trace and is named by route template.
    const server = trace.find((s) => s.kind === SPAN_KIND_SERVER && s.parentSpanId === callerSpanId);
    expect(server).toMatchObject({ name: 'GET /profiles/:userId', scope: '@opentelemetry/instrumentation-http' });
    expect(attr(server!.attributes, 'http.route')).toBe('/profiles/:userId');
    expect(attr(server!.attributes, 'http.response.status_code')).toBe('200');

    // The user row: pg spans inside the request.
    const queries = trace.filter(
      (s) => s.scope === '@opentelemetry/instrumentation-pg' && s.name.startsWith('pg.query'),
    );
    expect(queries.length).toBeGreaterThan(0);
    for (const query of queries) expect(isUnder(query, server!)).toBe(true);
    expect(queries.some((q) => /FROM "?users"?/i.test(attr(q.attributes, 'db.query.text') ?? ''))).toBe(true);

    // Both upstream calls: client spans under the server span, and the
    // upstream (the bundled simulator) received their traceparent.
    for (const part of ['posts', 'comments']) {
      const client = trace.find(
        (s) =>
          s.kind === SPAN_KIND_CLIENT &&
          (attr(s.attributes, 'url.full') ?? '').endsWith(`/users/${String(userId)}/${part}`),
      );
      expect(client).toBeDefined();
      expect(isUnder(client!, server!)).toBe(true);
      expect(trace.some((s) => s.kind === SPAN_KIND_SERVER && s.parentSpanId === client!.spanId)).toBe(true);
    }

    // A request without traceparent starts its own trace, with its INSERT inside.
    const create = receiver.spans.find((s) => s.kind === SPAN_KIND_SERVER && s.name === 'POST /users');
    expect(create).toBeDefined();
    expect(create!.parentSpanId ?? '').toBe('');
    expect(create!.traceId).not.toBe(callerTraceId);
    expect(
      receiver.spans.some(
        (s) =>
          s.traceId === create!.traceId && s.parentSpanId === create!.spanId && s.name.startsWith('pg.query:INSERT'),
      ),
    ).toBe(true);

    // Probes are not traced (startAppProcess polled /ready).
    expect(receiver.spans.filter((s) => attr(s.attributes, 'url.path') === '/ready')).toEqual([]);

    // Every log line of the request carries its trace; the access line names the server span.
    const lines = logLines(app).filter((l) => l['reqId'] === 'tracing-e2e-profile');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line['traceId']).toBe(callerTraceId);
    expect(lines.find((l) => l['msg'] === 'request completed')).toMatchObject({ spanId: server!.spanId });

    expect(app.output()).toContain('otel-load @opentelemetry/sdk-trace-node');
  });
});

describe('tracing off (OTEL_EXPORTER_OTLP_ENDPOINT unset)', () => {
  let service: { app: AppProcess; drop: () => Promise<void> } | undefined;

  beforeAll(async () => {
    service = await startService({});
  }, 120_000);

  afterAll(async () => {
    await service?.app.stop();
    await service?.drop();
  });

  it('loads no OpenTelemetry SDK, instrumentation or exporter, and writes no trace ids', async () => {
    const { app } = service!;
    const userId = await createUser(app, 'untraced@example.com');
    const res = await fetch(`${app.url}/profiles/${String(userId)}`, {
      headers: { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, 'x-request-id': 'tracing-e2e-off' },
    });
    expect(res.status).toBe(200);
    expect(await app.stop()).toBe(0);

    // prom-client requires the API facade (a no-op without an SDK) for exemplars; nothing else may load.
    const loaded = new Set(app.output().match(/(?<=otel-load )\S+/g) ?? []);
    expect([...loaded]).toEqual(['@opentelemetry/api']);
    const lines = logLines(app);
    expect(lines.filter((l) => l['reqId'] === 'tracing-e2e-off').length).toBeGreaterThan(0);
    expect(lines.filter((l) => 'traceId' in l)).toEqual([]);
  });
});
