import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CORE_SCHEMA, load, mergeTag } from 'js-yaml';
import { parseConfig } from '../../src/config/load-config.js';
import { concrete, dashboard, exprs, instanceVariable, panels, queryPanels } from '../support/dashboard.js';
import { DEPLOY_NGINX_CONF, nginxAvailable, renderApiConfig, wrapForLocalRun } from '../support/nginx-process.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/*
 * The operator's files under deploy/ and the compose profiles that start them:
 * parsed, cross-checked against each other, checked by the real tools where
 * installed (promtool, nginx -t), and the dashboard's PromQL checked against the
 * metric names a running app exposes.
 */
const yaml = (path: string): any => load(readFileSync(path, 'utf8'), { schema: CORE_SCHEMA.withTags(mergeTag) });

const tool = (name: string, ...args: string[]) => {
  const probe = spawnSync(name, args, { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
};
const hasPromtool = tool('promtool', '--version');
if (!hasPromtool) console.warn('[skip] promtool checks of deploy/: promtool not installed (Debian package prometheus)');
const hasNginx = nginxAvailable();
if (!hasNginx) console.warn('[skip] nginx -t of deploy/nginx/nginx.conf: nginx not installed');
const itPromtool = hasPromtool ? it : it.skip;
const itNginx = hasNginx ? it : it.skip;

const compose = yaml('docker-compose.yml');
const services: Record<string, any> = compose.services;
const prometheus = yaml('deploy/prometheus/prometheus.yml');
const datasources = yaml('deploy/grafana/provisioning/datasources/prometheus.yml');
const providers = yaml('deploy/grafana/provisioning/dashboards/nest-async-api.yml');
const nginxConf = readFileSync(DEPLOY_NGINX_CONF, 'utf8');

/** `./host/path:/container/path[:ro]` bind mounts of a compose service. */
const mounts = (service: any): { source: string; target: string }[] =>
  ((service.volumes ?? []) as string[]).map((v) => {
    const [source = '', target = ''] = v.split(':');
    return { source, target };
  });
/** The service name of a `host:port` address on the compose network. */
const hostOf = (address: string) => new URL(`http://${address}`).hostname;

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
]);

/** The metric names a PromQL expression reads: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  for (const match of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name = '', call] = match;
    if (call === undefined && !PROMQL_KEYWORDS.has(name) && !/^[0-9]/.test(name)) names.add(name);
  }
  return [...names];
}

describe('PromQL metric-name extraction (used below)', () => {
  it('finds the metrics and nothing else', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{instance=~"$instance",status=~"5.."}[5m]))) / ignoring(x) max without (policy) (up)',
      ).sort(),
    ).toEqual(['http_request_duration_seconds_bucket', 'up']);
  });
});

describe('docker-compose.yml profiles', () => {
  it('keeps the default stack (postgres, redis, app) out of every profile', () => {
    for (const name of ['postgres', 'redis', 'app']) expect(services[name]?.profiles).toBeUndefined();
  });

  it('runs two replicas of the same image on the same PostgreSQL and Redis behind nginx (profile scale)', () => {
    const replicas = ['api-1', 'api-2'].map((n) => services[n]);
    for (const replica of replicas) {
      expect(replica.profiles).toEqual(['scale']);
      expect(replica.build).toBe(services['app'].build);
      expect(replica.environment.DATABASE_URL).toBe(services['app'].environment.DATABASE_URL);
      expect(replica.environment.REDIS_URL).toBe(services['app'].environment.REDIS_URL);
      expect(replica.ports).toBeUndefined(); // reachable through nginx only
      // The replica's settings pass the app's own config schema.
      expect(parseConfig(replica.environment).http.trustProxy).toBe('uniquelocal');
    }
    expect(replicas[0].image).toBe(replicas[1].image);

    const nginx = services['nginx'];
    expect(nginx.profiles).toEqual(['scale']);
    expect(mounts(nginx)).toContainEqual({
      source: `./${DEPLOY_NGINX_CONF}`,
      target: '/etc/nginx/conf.d/default.conf',
    });
    expect(Object.keys(nginx.depends_on).sort()).toEqual(['api-1', 'api-2']);
    // nginx.conf's upstream names exactly these services, on the port they listen on.
    const upstream = [...nginxConf.matchAll(/^\s*server\s+(\S+:\d+)/gm)].map((m) => m[1]);
    expect(upstream).toEqual(['api-1:3000', 'api-2:3000']);
  });

  it('starts Prometheus and Grafana with the files under deploy/ (profile observability)', () => {
    for (const name of ['prometheus', 'grafana']) {
      expect(services[name].profiles).toEqual(['observability']);
      for (const { source } of mounts(services[name])) expect(existsSync(source)).toBe(true);
    }
    expect(mounts(services['prometheus'])).toContainEqual({
      source: './deploy/prometheus/prometheus.yml',
      target: '/etc/prometheus/prometheus.yml',
    });
    expect(mounts(services['grafana']).map((m) => m.source)).toEqual(
      expect.arrayContaining(['./deploy/grafana/provisioning', './deploy/grafana/dashboards']),
    );
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  itPromtool('passes promtool check config', () => {
    const run = spawnSync('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml'], { encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toMatch(/SUCCESS/);
    expect(run.status).toBe(0);
  });

  it('scrapes each instance of the compose file directly, on its own port', () => {
    const job = (prometheus.scrape_configs as any[]).find((j) => j.job_name === 'nest-async-api');
    expect(job.metrics_path).toBe('/metrics');
    const targets = (job.static_configs as { targets: string[] }[]).flatMap((c) => c.targets);
    expect(targets.sort()).toEqual(['api-1:3000', 'api-2:3000', 'app:3000']);
    for (const target of targets) expect(services[hostOf(target)]).toBeDefined();
  });
});

describe('deploy/grafana', () => {
  it('provisions the Prometheus service as the data source the dashboard uses', () => {
    const [source] = datasources.datasources as { uid: string; type: string; url: string }[];
    expect(source?.type).toBe('prometheus');
    expect(services[new URL(source!.url).hostname]?.profiles).toEqual(['observability']);
    for (const panel of queryPanels) {
      expect(panel.datasource?.uid).toBe(source!.uid);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid ?? source!.uid).toBe(source!.uid);
    }
  });

  it('loads dashboards from the folder compose mounts the dashboard JSON at', () => {
    const [provider] = providers.providers as { type: string; options: { path: string } }[];
    expect(provider?.type).toBe('file');
    const mount = mounts(services['grafana']).find((m) => m.source === './deploy/grafana/dashboards');
    expect(mount?.target).toBe(provider!.options.path);
  });

  it('is a well-formed dashboard: unique ids, a 24-column grid, a query in every panel', () => {
    expect(dashboard.uid).toBe('nest-async-api');
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      expect(panel.title).not.toBe('');
    }
    for (const panel of queryPanels) expect(panel.targets?.length).toBeGreaterThan(0);
    // The panels the runbook needs.
    const titles = queryPanels.map((p) => p.title).join('\n');
    for (const topic of [
      /Request rate/,
      /Errors/,
      /p50/,
      /p95/,
      /p99/,
      /breakers/i,
      /Rate-limit/,
      /pool/i,
      /Event-loop/,
      /WebSocket and SSE/,
      /queue depth/,
    ]) {
      expect(titles).toMatch(topic);
    }
    // The instance variable reads the job prometheus.yml defines.
    const jobs = (prometheus.scrape_configs as { job_name: string }[]).map((j) => j.job_name);
    expect(jobs).toContain(/job="([^"]+)"/.exec(instanceVariable?.definition ?? '')?.[1]);
  });

  itPromtool('has queries that parse as PromQL (promtool check rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-rules-'));
    try {
      const rules = exprs.map(
        (expr, i) => `      - record: dashboard:query_${String(i)}\n        expr: ${JSON.stringify(concrete(expr))}`,
      );
      const file = join(dir, 'rules.yml');
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const run = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(`${run.stdout}${run.stderr}`).toMatch(new RegExp(`SUCCESS: ${String(exprs.length)} rules found`));
      expect(run.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('against a running app', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp();
    }, 60_000);
    afterAll(async () => {
      await t.close();
    });

    it('only reads metrics the app exposes', async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      const exposed = new Set<string>();
      for (const [, name = '', type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        exposed.add(name);
        if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exposed.add(`${name}${suffix}`);
        if (type === 'summary') for (const suffix of ['_sum', '_count']) exposed.add(`${name}${suffix}`);
      }
      const used = new Set([
        ...exprs.flatMap(metricNames),
        ...metricNames(/label_values\((.*), \w+\)/.exec(instanceVariable?.definition ?? '')?.[1] ?? ''),
      ]);
      expect(used.size).toBeGreaterThan(20);
      expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
    });
  });
});

describe('deploy/nginx/nginx.conf', () => {
  itNginx('passes nginx -t with its upstream pointed at local ports (the scale-out test runs it for real)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nginx-t-'));
    try {
      const file = join(dir, 'nginx.conf');
      writeFileSync(file, wrapForLocalRun(renderApiConfig(nginxConf, ['127.0.0.1:1', '127.0.0.1:2'], 8), dir));
      const run = spawnSync('nginx', ['-t', '-c', file, '-p', dir], { encoding: 'utf8' });
      expect(run.stderr).toMatch(/test is successful/);
      expect(run.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('proxies WebSockets with an upgrade, streams SSE unbuffered, retries idempotent requests elsewhere', () => {
    const location = (path: string) => new RegExp(`location = ${path} \\{([^}]*)\\}`).exec(nginxConf)?.[1] ?? '';
    expect(nginxConf).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(nginxConf).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
    for (const path of ['/events', '/stream']) {
      expect(location(path)).toMatch(/proxy_buffering off;/);
      expect(location(path)).toMatch(/proxy_read_timeout 1h;/);
    }
    expect(location('/ws')).toMatch(/proxy_read_timeout 1h;/);
    expect(nginxConf).toMatch(/proxy_next_upstream error timeout http_502 http_503;/);
    expect(nginxConf).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    expect(nginxConf).toMatch(/proxy_set_header X-Request-Id \$api_request_id;/);
    // A location with its own proxy_set_header would drop every header set at server level.
    for (const block of nginxConf.matchAll(/location [^{]*\{([^}]*)\}/g))
      expect(block[1]).not.toMatch(/proxy_set_header/);
  });
});
