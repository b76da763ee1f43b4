// Process helpers for the benchmark suite: spawning pinned to a core (taskset
// where it exists), free ports, waiting for readiness, stopping, sampling a
// process's memory from /proc/<pid>/status and its CPU time from /proc/<pid>/stat.
/* global clearInterval, clearTimeout, fetch, setInterval, setTimeout */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const HAS_TASKSET = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

/**
 * Spawns `node args...` pinned to `core` when taskset exists (the server under
 * test on core 0, load generators and helpers on core 1). `node` is the binary
 * (default: the one running this suite).
 */
export function spawnNode(
  args,
  { core, env, stdio = ['ignore', 'ignore', 'pipe'], nodeOptions = [], node = process.execPath } = {},
) {
  return spawnCommand(node, [...nodeOptions, ...args], { core, env, stdio });
}

/**
 * Spawns any `command args...`, pinned like spawnNode. Under taskset the child's
 * pid is the command's own (taskset execs it), so /proc/<pid> is the server's.
 */
export function spawnCommand(command, args, { core, env, stdio = ['ignore', 'ignore', 'pipe'] } = {}) {
  const [cmd, argv] =
    HAS_TASKSET && core !== undefined ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
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

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`; 100 on Linux when getconf is missing). */
export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && n > 0 ? n : 100;
})();

/**
 * CPU time (user + system, every thread of the process) of `pid` so far, in
 * clock ticks (fields 14 and 15 of /proc/<pid>/stat); NaN when it is gone.
 */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
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
