import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { Client } from 'undici';
import { startAppProcess, type AppProcess } from '../support/app-process.js';
import { connectionsOnTwoWorkers, isRunning, pidOf, pidOfNewConnection, until } from '../support/cluster-workers.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { processDatabaseEnv } from '../support/test-database.js';
import { bearer, mintToken } from '../support/tokens.js';

/*
 * /metrics in cluster mode (WEB_CONCURRENCY=2), on the built service as a real
 * process: whichever worker takes the scrape answers for both, counters and
 * histograms summed, gauges summed, each process's own figures under a
 * `worker` label; a stopped worker delays the answer by the primary's timeout
 * only, and a killed one takes none of the totals with it.
 */
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
const hasPromtool = promtool.error === undefined && promtool.status === 0;
if (!hasPromtool) console.warn('[skip] promtool check of cluster metrics: promtool not installed (package prometheus)');

/** The primary's wait for the workers' registries (COLLECT_TIMEOUT_MS). */
const COLLECT_TIMEOUT_MS = 2000;
const N = 24;
const NOT_FOUND = 'http_requests_total{method="GET",route="/users/:id",status="404"}';
const NOT_FOUND_COUNT = 'http_request_duration_seconds_count{method="GET",route="/users/:id",status="404"}';
const NOT_FOUND_INF = 'http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/users/:id",status="404"}';

/** The value of one series in exposition text, or undefined when it is absent. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The `worker` labels a metric's series carry, and whether any series has none. */
function workerLabels(text: string, name: string): { labels: string[]; unlabelled: boolean } {
  const lines = text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  const labels = lines.flatMap((l) => /[{,]worker="([^"]*)"/.exec(l)?.[1] ?? []);
  return { labels: [...new Set(labels)].sort(), unlabelled: labels.length < lines.length };
}

async function scrape(client: Client): Promise<{ status: number; contentType: string; text: string }> {
  const res = await client.request({ method: 'GET', path: '/metrics' });
  return {
    status: res.statusCode,
    contentType: String(res.headers['content-type']),
    text: await res.body.text(),
  };
}

describe('cluster mode: /metrics answers for the whole process group', () => {
  let service: AppProcess | undefined;
  let dropDatabase: () => Promise<void> = async () => {};
  const clients: Client[] = [];
  /** The two keep-alive connections, one on each worker. */
  let a: Client;
  let b: Client;

  beforeAll(async () => {
    const database = await processDatabaseEnv(externalDatabaseUrl());
    dropDatabase = database.drop;
    service = await startAppProcess(
      { WEB_CONCURRENCY: '2', DB_POOL_SIZE: '4', RATE_LIMIT_RATE: '0', ...database.env },
      { readyTimeoutMs: 60_000 },
    );
    [a, b] = await connectionsOnTwoWorkers(service.url);
    clients.push(a, b);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    if (service !== undefined) expect(await service.stop()).toBe(0);
    await dropDatabase();
  }, 30_000);

  it('counts in one scrape every request either worker served; heap, event loop and CPU per worker', async () => {
    const served = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      // A new connection each: node:cluster's round-robin hands them out in turn.
      const client = new Client(service!.url);
      try {
        const pid = await pidOf(client);
        const res = await client.request({ method: 'GET', path: '/users/999999' });
        await res.body.text();
        expect(res.statusCode).toBe(404);
        served.set(pid, (served.get(pid) ?? 0) + 1);
      } finally {
        await client.close();
      }
    }
    expect(served.size).toBe(2);

    // Either worker's answer is the whole group's.
    const [fromA, fromB] = [await scrape(a), await scrape(b)];
    for (const { status, contentType, text } of [fromA, fromB]) {
      expect(status).toBe(200);
      expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(valueOf(text, NOT_FOUND)).toBe(N);
      expect(valueOf(text, NOT_FOUND_COUNT)).toBe(N);
      expect(valueOf(text, NOT_FOUND_INF)).toBe(N);
      expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(0);
      expect(text.match(/^# TYPE http_requests_total counter$/gm)).toHaveLength(1);
    }
    for (const name of [
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'process_start_time_seconds',
    ]) {
      expect({ name, ...workerLabels(fromB.text, name) }).toEqual({ name, labels: ['0', '1'], unlabelled: false });
    }
    // Figures of the whole group carry no worker label.
    expect(workerLabels(fromB.text, 'http_requests_total').labels).toEqual([]);
    expect(workerLabels(fromB.text, 'db_pool_max_connections')).toEqual({ labels: [], unlabelled: true });
    expect(valueOf(fromB.text, 'db_pool_max_connections')).toBe(2 * 4);

    if (hasPromtool) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: fromB.text, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
      expect(check.status).toBe(0);
    }
  });

  it('sums gauges: SSE streams held open on both workers', async () => {
    const streams: Client[] = [];
    const holders = new Set<number>();
    const headers = bearer(await mintToken({ sub: 'cluster-metrics' }));
    try {
      while (holders.size < 2) {
        if (streams.length >= 10) throw new Error('SSE streams did not spread over both workers');
        const client = new Client(service!.url);
        streams.push(client);
        holders.add(await pidOf(client));
        const res = await client.request({ method: 'GET', path: '/events', headers });
        expect(res.statusCode).toBe(200);
        res.body.resume(); // open until the client goes
      }
      const { text } = await scrape(a);
      expect(valueOf(text, 'sse_subscribers')).toBe(streams.length);
    } finally {
      await Promise.all(streams.map((c) => c.destroy()));
    }
  });

  it('answers after the timeout without a stopped worker, its counts standing in, and logs which', async () => {
    const stopped = await pidOf(a);
    process.kill(stopped, 'SIGSTOP');
    try {
      const started = Date.now();
      const { status, text } = await scrape(b);
      const took = Date.now() - started;
      expect(status).toBe(200);
      expect(took).toBeGreaterThanOrEqual(COLLECT_TIMEOUT_MS - 100);
      expect(took).toBeLessThan(COLLECT_TIMEOUT_MS + 2000);
      expect(valueOf(text, NOT_FOUND)).toBe(N);
      expect(valueOf(text, NOT_FOUND_COUNT)).toBe(N);
      expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(1);
      expect(workerLabels(text, 'nodejs_heap_size_used_bytes').labels).toHaveLength(1);
      // The primary's line may reach its stdout a moment after the answer it logs.
      const logged = new RegExp(
        `"missing":\\[\\{"slot":\\d,"workerPid":${String(stopped)}\\}\\].*without some workers`,
      );
      for (let i = 0; i < 40 && !logged.test(service!.output()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(service!.output()).toMatch(logged);
    } finally {
      process.kill(stopped, 'SIGCONT');
    }
    // Resumed, it answers again.
    const { text } = await scrape(b);
    expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(0);
    expect(workerLabels(text, 'nodejs_heap_size_used_bytes').labels).toEqual(['0', '1']);
  }, 20_000);

  it('keeps the totals when a worker is killed and replaced', async () => {
    const killed = await pidOf(a);
    const survivor = await pidOf(b);
    process.kill(killed, 'SIGKILL');
    await a.destroy();
    await until(async () => !isRunning(killed), 10_000, 'the primary reaping the killed worker');
    // Its replacement listens once a new connection reaches a third pid.
    await until(
      async () => ![killed, survivor].includes(await pidOfNewConnection(service!.url)),
      30_000,
      'a replacement worker answering',
    );
    const { text } = await scrape(b);
    expect(valueOf(text, NOT_FOUND)).toBe(N);
    expect(valueOf(text, NOT_FOUND_INF)).toBe(N);
    expect(valueOf(text, 'cluster_metrics_missing_workers')).toBe(0);
    // The replacement takes the killed worker's slot, so the same two labels.
    expect(workerLabels(text, 'process_start_time_seconds').labels).toEqual(['0', '1']);
  }, 45_000);
});
