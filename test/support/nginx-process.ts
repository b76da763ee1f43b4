import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './simulator-process.js';

/** The compose profile's nginx config (an http-context file), shared with the tests. */
export const DEPLOY_NGINX_CONF = 'deploy/nginx/nginx.conf';

/** Whether Debian's nginx (or any nginx on PATH) can be run. */
export function nginxAvailable(): boolean {
  const probe = spawnSync('nginx', ['-v'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/**
 * deploy/nginx/nginx.conf with its upstream `server` lines pointed at
 * `upstreams` (host:port, each keeping the deploy file's parameters) and
 * `listen 80` moved to a loopback port. Throws when the deploy file no
 * longer has the shape this relies on, so the test cannot silently drift.
 */
export function renderApiConfig(template: string, upstreams: readonly string[], port: number): string {
  const block = /^upstream api \{\n([\s\S]*?)\n\}/m.exec(template);
  if (block?.[1] === undefined) throw new Error(`${DEPLOY_NGINX_CONF}: no "upstream api { … }" block`);
  const serverLine = /^(\s*)server\s+\S+((?:\s+[a-z_]+=\S+)*)\s*;\s*$/;
  const lines = block[1].split('\n');
  const first = lines.map((l) => serverLine.exec(l)).find((m) => m !== null);
  if (first === undefined || first === null) throw new Error(`${DEPLOY_NGINX_CONF}: no server line in the upstream`);
  const [, indent = '    ', params = ''] = first;
  const servers = upstreams.map((u) => `${indent}server ${u}${params};`);
  const kept = lines.filter((l) => !serverLine.test(l));
  const at = lines.findIndex((l) => serverLine.test(l));
  const rest = kept.slice(at);
  const body = [...kept.slice(0, at), ...servers, ...rest].join('\n');
  const withUpstream = template.replace(block[0], `upstream api {\n${body}\n}`);
  const listen = /^(\s*)listen 80;$/m;
  if (!listen.test(withUpstream)) throw new Error(`${DEPLOY_NGINX_CONF}: no "listen 80;" line`);
  return withUpstream.replace(listen, `$1listen 127.0.0.1:${String(port)};`);
}

/** A whole nginx.conf that runs in the foreground with every file inside `dir`. */
export function wrapForLocalRun(apiConfig: string, dir: string): string {
  return [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    // Old workers of a reload, or a stop, do not wait for long-lived streams past this.
    'worker_shutdown_timeout 5s;',
    // As root, workers would switch to "nobody", which cannot enter the private temp dir.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log notice;`,
    'events { worker_connections 1024; }',
    'http {',
    `    access_log ${dir}/access.log;`,
    `    client_body_temp_path ${dir}/client_body;`,
    `    proxy_temp_path ${dir}/proxy;`,
    `    fastcgi_temp_path ${dir}/fastcgi;`,
    `    uwsgi_temp_path ${dir}/uwsgi;`,
    `    scgi_temp_path ${dir}/scgi;`,
    apiConfig,
    '}',
    '',
  ].join('\n');
}

export interface NginxProcess {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly child: ChildProcess;
  /** Points the upstream at other servers and reloads (`nginx -s reload`); resolves once new workers run. */
  reload(upstreams: readonly string[]): Promise<void>;
  errorLog(): string;
  stop(): Promise<void>;
}

function nginxArgs(file: string, dir: string, ...extra: string[]): string[] {
  return ['-c', file, '-p', dir, ...extra];
}

function writeConfig(file: string, dir: string, upstreams: readonly string[], port: number): void {
  const template = readFileSync(DEPLOY_NGINX_CONF, 'utf8');
  writeFileSync(file, wrapForLocalRun(renderApiConfig(template, upstreams, port), dir));
  const check = spawnSync('nginx', nginxArgs(file, dir, '-t'), { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t failed:\n${check.stderr}`);
}

async function accepting(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** Debian's nginx in the foreground (`nginx -c <file> -p <tmpdir>`) on a free loopback port. */
export async function startNginx(upstreams: readonly string[]): Promise<NginxProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  const file = join(dir, 'nginx.conf');
  const port = await freePort();
  writeConfig(file, dir, upstreams, port);
  const child = spawn('nginx', nginxArgs(file, dir), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const errorLog = () => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return stderr;
    }
  };
  const started = Date.now();
  while (!(await accepting(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${String(child.exitCode)}:\n${stderr}`);
    if (Date.now() - started > 10_000) throw new Error(`nginx not listening within 10 s:\n${errorLog()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const workersStarted = () =>
    errorLog()
      .split('\n')
      .filter((l) => l.includes('start worker process')).length;
  return {
    url: `http://127.0.0.1:${String(port)}`,
    child,
    errorLog,
    reload: async (next) => {
      const before = workersStarted();
      writeConfig(file, dir, next, port);
      const signal = spawnSync('nginx', nginxArgs(file, dir, '-s', 'reload'), { encoding: 'utf8' });
      if (signal.status !== 0) throw new Error(`nginx -s reload failed:\n${signal.stderr}`);
      const since = Date.now();
      while (workersStarted() <= before) {
        if (Date.now() - since > 10_000) throw new Error(`nginx did not reload within 10 s:\n${errorLog()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: async () => {
      if (child.exitCode === null) {
        // SIGQUIT: graceful stop, open connections finish first.
        child.kill('SIGQUIT');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
