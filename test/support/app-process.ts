import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './simulator-process.js';
import { createTestDatabase } from './test-database.js';
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

/**
 * `count` app processes sharing one database, as behind a load balancer; `env[i]`
 * adds to instance i's variables. With `databaseUrl`, a fresh database on that
 * server, and all start at once (their migrations take turns). Without it, the
 * first serves its embedded database on a free port and the others connect to
 * it: that server admits the first's pool + 2 connections, so the others share
 * those 2; its connections share one session, so they send no named statements;
 * and no instance runs a notification worker.
 */
export async function startSharedInstances(
  databaseUrl: string | undefined,
  count: number,
  shared: Record<string, string>,
  env: readonly Record<string, string>[] = [],
): Promise<{ apps: AppProcess[]; drop: () => Promise<void> }> {
  const db = await createTestDatabase(databaseUrl);
  const started: AppProcess[] = [];
  // Every start is awaited, so a failure leaves nothing running that the catch cannot stop.
  const startAll = async (indexes: number[], vars: Record<string, string>): Promise<AppProcess[]> => {
    const settled = await Promise.allSettled(
      indexes.map(async (i) => {
        const app = await startAppProcess({ ...shared, ...vars, ...env[i] });
        started.push(app);
        return app;
      }),
    );
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<AppProcess>).value);
  };
  const all = Array.from({ length: count }, (_, i) => i);
  try {
    if (db.url !== undefined) return { apps: await startAll(all, { DATABASE_URL: db.url }), drop: db.drop };
    const port = await freePort();
    const noWorker = { NOTIFY_WORKER_ENABLED: 'false' };
    const host = await startAll([0], {
      ...noWorker,
      DB_POOL_SIZE: '4',
      PGLITE_DATA_DIR: 'memory://',
      PGLITE_PORT: String(port),
    });
    const others = await startAll(all.slice(1), {
      ...noWorker,
      DB_POOL_SIZE: String(Math.max(1, Math.floor(2 / Math.max(1, count - 1)))),
      DB_NAMED_STATEMENTS: 'false',
      DATABASE_URL: `postgres://postgres@127.0.0.1:${String(port)}/postgres`,
    });
    return { apps: [...host, ...others], drop: db.drop };
  } catch (error) {
    await Promise.all(started.map((app) => app.stop()));
    await db.drop();
    throw error;
  }
}
