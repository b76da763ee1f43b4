import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CORE_SCHEMA, dump, load } from 'js-yaml';
import { freePort } from './simulator-process.js';

/** The compose profile's Prometheus config, which the real-Prometheus test derives its own from. */
export const DEPLOY_PROMETHEUS_YML = 'deploy/prometheus/prometheus.yml';
/** The job that scrapes the service in that config. */
export const SERVICE_JOB = 'nest-async-api';

/** Whether Debian's prometheus (or any on PATH) can be run. */
export function prometheusAvailable(): boolean {
  const probe = spawnSync('prometheus', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

interface StaticConfig {
  targets: string[];
  labels?: Record<string, string>;
}
interface ScrapeConfig {
  job_name: string;
  static_configs?: StaticConfig[];
  [key: string]: unknown;
}

/**
 * deploy/prometheus/prometheus.yml with only what cannot hold outside compose
 * changed: the service job scrapes `target` (with the labels of its first
 * target group, the single-instance one), Prometheus's own job `self`, and
 * everything every second. Throws when the file lost the job this relies on.
 */
export function renderPrometheusConfig(template: string, target: string, self: string): string {
  const config = load(template, { schema: CORE_SCHEMA }) as {
    global: Record<string, unknown>;
    scrape_configs: ScrapeConfig[];
  };
  const job = config.scrape_configs.find((j) => j.job_name === SERVICE_JOB);
  const group = job?.static_configs?.[0];
  if (job === undefined || group === undefined) throw new Error(`${DEPLOY_PROMETHEUS_YML}: no ${SERVICE_JOB} targets`);
  job.static_configs = [{ ...group, targets: [target] }];
  for (const other of config.scrape_configs) {
    if (other !== job) other.static_configs = [{ targets: [self] }];
  }
  config.global = { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' };
  return dump(config);
}

export interface ActiveTarget {
  readonly labels: Record<string, string>;
  readonly scrapePool: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastScrape: string;
  readonly lastError: string;
}

export interface InstantSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface PrometheusProcess {
  readonly url: string;
  /** Everything the process wrote. */
  output(): string;
  /** GET /api/v1/targets: the active targets. */
  targets(): Promise<ActiveTarget[]>;
  /** An instant query (GET /api/v1/query), now. */
  query(promql: string): Promise<InstantSample[]>;
  /** SIGTERM, waits for the exit, removes its config and storage. */
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? res.status}`);
  return body.data;
}

/**
 * A Prometheus server of its own: the rendered deploy config, a fresh storage
 * folder, a free loopback port; ready once `/-/ready` answers.
 */
export async function startPrometheus(target: string): Promise<PrometheusProcess> {
  const port = await freePort();
  const self = `127.0.0.1:${String(port)}`;
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-e2e-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, renderPrometheusConfig(readFileSync(DEPLOY_PROMETHEUS_YML, 'utf8'), target, self));
  const child = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${self}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://${self}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${String(child.exitCode)}:\n${output}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 30_000) {
      await stop();
      throw new Error(`prometheus not ready within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => output,
    targets: async () => (await api<{ activeTargets: ActiveTarget[] }>(`${url}/api/v1/targets`)).activeTargets,
    query: async (promql) => {
      const data = await api<{ resultType: string; result: InstantSample[] }>(
        `${url}/api/v1/query?query=${encodeURIComponent(promql)}`,
      );
      if (data.resultType !== 'vector') throw new Error(`${promql}: a ${data.resultType}, not an instant vector`);
      return data.result;
    },
    stop,
  };
}
