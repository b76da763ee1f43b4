import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './simulator-process.js';
import { TEST_KEYS_DIR } from './tokens.js';

export interface AppProcess {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr. */
  output(): string;
  /** SIGTERM, then waits for the exit code. */
  stop(): Promise<number | null>;
}

/**
 * The built service (`node dist/main.js`) as its own process on a free
 * loopback port, ready once `/ready` answers 200. Only PATH and the given
 * variables reach it, so the machine's environment cannot leak in.
 */
export async function startAppProcess(
  env: Record<string, string>,
  options: { readonly readyTimeoutMs?: number; readonly port?: number } = {},
): Promise<AppProcess> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  // A replacement for a killed process can take its port, so its clients reconnect to it.
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, ['dist/main.js'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
      AUTH_KEYS_DIR: TEST_KEYS_DIR,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const url = `http://127.0.0.1:${String(port)}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`app exited with ${String(child.exitCode)}:\n${output}`);
    try {
      if ((await fetch(`${url}/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > readyTimeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`app not ready within ${String(readyTimeoutMs / 1000)} s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}
