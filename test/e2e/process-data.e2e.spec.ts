import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, bearer } from '../support/tokens.js';

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, any>;
}

/**
 * POST through node:http: an oversized body is answered (413) while the client
 * is still writing, and the server then closes; keep the answer, ignore the
 * broken pipe (fetch would report only the write error).
 */
function post(
  base: string,
  path: string,
  body: string | Buffer,
  contentType = 'application/json',
  headers: Record<string, string> = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      `${base}${path}`,
      {
        method: 'POST',
        headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? {} : JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(body);
  });
}

function expectProblem(res: Res, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, type: `/problems/${code}`, instance: '/process-data' });
}

/** Values with few digits, so a million of them fit well inside the 16 MiB limit. */
const randomValues = (n: number) => Array.from({ length: n }, () => Math.round((Math.random() - 0.5) * 2e7) / 1000);

function reference(values: readonly number[]) {
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const sum = values.reduce((a, b) => a + b, 0);
  const mean = sum / n;
  const stdDev = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  const rank = (p: number) => sorted[Math.max(1, Math.ceil((p * n) / 100)) - 1];
  return { n, sum, mean, stdDev, min: sorted[0], max: sorted[n - 1], p50: rank(50), p95: rank(95), p99: rank(99) };
}

const json = (value: unknown) => JSON.stringify(value);

describe('POST /process-data', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('returns the statistics of random data', async () => {
    const values = randomValues(5000);
    const res = await post(t.url, '/process-data', json({ values }), 'application/json; charset=utf-8');
    expect(res.status).toBe(200);
    const want = reference(values);
    const got = res.body;
    expect(got['count']).toBe(want.n);
    expect(got['sum']).toBeCloseTo(want.sum, 4);
    expect(got['mean']).toBeCloseTo(want.mean, 8);
    expect(got['stdDev']).toBeCloseTo(want.stdDev, 8);
    expect(got).toMatchObject({
      min: want.min,
      max: want.max,
      percentiles: { p50: want.p50, p95: want.p95, p99: want.p99 },
    });
    const buckets = got['histogram']['buckets'] as { from: number; to: number; count: number }[];
    expect(buckets).toHaveLength(20);
    expect(buckets[0]!.from).toBe(want.min);
    expect(buckets[19]!.to).toBe(want.max);
    expect(buckets.reduce((a, b) => a + b.count, 0)).toBe(want.n);
  });

  it('accepts a million values (a body over 1 MiB) on this route only', async () => {
    const values = randomValues(1_000_000);
    const body = json({ values });
    expect(body.length).toBeGreaterThan(8 * 1024 * 1024);
    const res = await post(t.url, '/process-data', body);
    expect(res.status).toBe(200);
    expect(res.body['count']).toBe(1_000_000);
    expect(res.body['min']).toBe(values.reduce((a, b) => Math.min(a, b)));
    expect(res.body['max']).toBe(values.reduce((a, b) => Math.max(a, b)));
  });

  it('keeps the global 1 MiB limit elsewhere and caps this route at PROCESS_DATA_BODY_LIMIT_BYTES', async () => {
    const users = await post(
      t.url,
      '/users',
      json({ name: 'x', email: 'big@example.org', pad: 'x'.repeat(2_000_000) }),
      'application/json',
      bearer(ADMIN),
    );
    expect(users.status).toBe(413);
    expect(users.body['code']).toBe('payload_too_large');
    const tooBig = await post(t.url, '/process-data', json({ values: [1], pad: 'x'.repeat(17 * 1024 * 1024) }));
    expectProblem(tooBig, 413, 'payload_too_large');
  });

  it('answers invalid bodies with 400 problems naming the fields', async () => {
    const cases: [string, string, string[]][] = [
      ['{"values":', 'invalid_json', ['body']],
      ['', 'invalid_json', ['body']],
      ['[1,2]', 'validation_failed', ['body']],
      ['{}', 'validation_failed', ['values']],
      ['{"values":"1,2"}', 'validation_failed', ['values']],
      ['{"values":[]}', 'validation_failed', ['values']],
      ['{"values":[1,"2",null,1e999]}', 'validation_failed', ['values.1', 'values.2', 'values.3']],
      ['{"values":[1],"extra":1}', 'validation_failed', ['extra']],
      [json({ values: new Array<number>(1_000_001).fill(0) }), 'validation_failed', ['values']],
    ];
    for (const [body, code, fields] of cases) {
      const res = await post(t.url, '/process-data', body);
      expectProblem(res, 400, code);
      expect((res.body['errors'] as { field: string }[]).map((e) => e.field)).toEqual(fields);
    }
  });

  it('answers 415 to a body that is not JSON, and never lets its private raw type through', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      expectProblem(await post(t.url, '/process-data', '{"values":[1]}', type), 415, 'unsupported_media_type');
    }
    expectProblem(
      await post(t.url, '/process-data', '{"values":[1]}', 'application/x-raw-json'),
      415,
      'unsupported_media_type',
    );
    const users = await post(
      t.url,
      '/users',
      json({ name: 'a', email: 'raw@example.org' }),
      'application/x-raw-json',
      bearer(ADMIN),
    );
    expect(users.status).toBe(415);
  });

  it('keeps /health responsive while a big computation runs', async () => {
    const body = json({ values: randomValues(1_000_000) });
    const big = post(t.url, '/process-data', body);
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    const health = await fetch(`${t.url}/health`);
    const elapsed = performance.now() - started;
    expect(health.status).toBe(200);
    expect(elapsed).toBeLessThan(500);
    expect((await big).status).toBe(200);
  });

  it('reports pool gauges on /metrics', async () => {
    const text = await (await fetch(`${t.url}/metrics`)).text();
    for (const name of [
      'worker_pool_utilization',
      'worker_pool_queue_size',
      'worker_pool_running_tasks',
      'worker_pool_completed_tasks',
      'worker_pool_rejections_total',
    ]) {
      expect(text).toMatch(new RegExp(`^${name} \\d`, 'm'));
    }
  });
});

describe('POST /process-data on a saturated pool', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ WORKER_POOL_SIZE: '1', WORKER_POOL_MAX_QUEUE: '1' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses work past one running and one waiting with 503 overloaded and Retry-After', async () => {
    const body = json({ values: randomValues(1_000_000) });
    const results = await Promise.all(Array.from({ length: 6 }, () => post(t.url, '/process-data', body)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    for (const res of results.filter((r) => r.status === 503)) {
      expectProblem(res, 503, 'overloaded');
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    const text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^worker_pool_rejections_total [1-9]/m);
  });
});
