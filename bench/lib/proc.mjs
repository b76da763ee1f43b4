// Process helpers for the benchmark suite: spawning pinned to a core (taskset
// where it exists), free ports, waiting for readiness, stopping, and sampling
// a process's memory from /proc/<pid>/status.
/* global clearInterval, clearTimeout, fetch, setInterval, setTimeout */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const HAS_TASKSET = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

/**
 * Spawns `node args...` pinned to `core` when taskset exists (the server under
 * test on core 0, load generators and helpers on core 1).
 */
export function spawnNode(args, { core, env, stdio = ['ignore', 'ignore', 'pipe'], nodeOptions = [] } = {}) {
  const nodeArgs = [...nodeOptions, ...args];
  const [cmd, argv] =
    HAS_TASKSET && core !== undefined
      ? ['taskset', ['-c', String(core), process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
  const child = spawn(cmd, argv, { env, stdio });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8000);
  });
  child.stderrTail = () => stderr;
  return child;
}

export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `url` until it answers 2xx, or throws when the child exits or the time is up. */
export async function waitForOk(url, child, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child !== undefined && child.exitCode !== null) {
      throw new Error(`process exited with ${child.exitCode} before ${url} answered:\n${child.stderrTail?.() ?? ''}`);
    }
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer 2xx within ${timeoutMs} ms`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
export async function stop(child, graceMs = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/**
 * The pid of the node process itself: under taskset, the child's pid is the
 * node process (taskset execs it), so this is the same pid.
 */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Samples RSS every `intervalMs` until stopped; `stop()` returns the peak seen (bytes). */
export function sampleMemory(pid, intervalMs = 100) {
  let peak = memoryOf(pid).rss;
  const timer = setInterval(() => {
    const { rss } = memoryOf(pid);
    if (rss > peak || Number.isNaN(peak)) peak = rss;
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      const { rss } = memoryOf(pid);
      return Math.max(peak, Number.isNaN(rss) ? 0 : rss);
    },
  };
}

/** Runs `node script args` (pinned), collects stdout, parses its last line as JSON. */
export async function runJsonChild(script, args, { core, env = process.env, timeoutMs = 600_000 } = {}) {
  const child = spawnNode([script, ...args], { core, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0) throw new Error(`${script} exited with ${code}:\n${child.stderrTail()}\n${out.slice(-2000)}`);
  return JSON.parse(last);
}
