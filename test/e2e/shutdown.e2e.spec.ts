import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { externalDatabaseUrl } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';
import { adminJson, TEST_KEYS_DIR } from '../support/tokens.js';

/**
 * Drives the built service (node dist/main.js) as a real process: SIGTERM
 * while hundreds of requests are in flight must let every one of them finish,
 * turn readiness 503 first, exit 0, and leave the data on disk.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist', 'main.js');
/** Concurrent POST /users fired just before SIGTERM. */
const LOAD = 300;
/** Requests whose body is only half sent at SIGTERM and completed while the server closes. */
const SLOW = 10;
/** When, after SIGTERM, each readiness probe goes out. */
const PROBE_DELAYS_MS = [0, 20, 50, 100, 150];

type Exit = { code: number | null; signal: NodeJS.Signals | null };

interface Service {
  readonly child: ChildProcess;
  readonly url: string;
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  readonly exited: Promise<Exit>;
}

interface Answer {
  status: number;
  body: any;
  connection?: string | undefined;
}

type Outcome = { res: Answer; error?: undefined } | { res?: undefined; error: NodeJS.ErrnoException };

const services: Service[] = [];
let workDir: string | undefined;
let databaseEnv: Record<string, string>;
let dropDatabase: (() => Promise<void>) | undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

async function startService(): Promise<Service> {
  if (workDir === undefined) throw new Error('no work folder');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Jest's flags and the suite's own DATABASE_URL are not the service's business.
  delete env['NODE_OPTIONS'];
  delete env['DATABASE_URL'];
  Object.assign(env, {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    LOG_ACCESS: 'false',
    DOCS_ENABLED: 'false',
    SHUTDOWN_GRACE_MS: '10000',
    SHUTDOWN_DRAIN_DELAY_MS: '300',
    // This test is about shutdown, not the overload protections: one client sending a
    // burst of hundreds of requests must not be rate limited, shed or turned away.
    RATE_LIMIT_RATE: '0',
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    DATABASE_BULKHEAD_MAX_QUEUE: '100000',
    DATABASE_BULKHEAD_QUEUE_TIMEOUT_MS: '60000',
    DATABASE_TIMEOUT_MS: '30000',
    DATABASE_DEADLINE_MS: '60000',
    // The test issuer's key, so the tokens this suite mints verify in the service.
    AUTH_KEYS_DIR: TEST_KEYS_DIR,
    ...databaseEnv,
  });
  // The work folder as cwd, so a developer's .env in the repository is not picked up.
  const child = spawn(process.execPath, [MAIN], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  const service: Service = { child, url: `http://127.0.0.1:${String(port)}`, logs, stderr, exited };
  services.push(service);
  await waitReady(service);
  return service;
}

const running = (service: Service) => service.child.exitCode === null && service.child.signalCode === null;

async function waitReady(service: Service, withinMs = 60_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!running(service)) throw new Error(`service exited before it was ready: ${service.stderr.join('')}`);
    try {
      const res = await request(service.url, 'GET', '/ready');
      if (res.status === 200) return;
      last = `${String(res.status)} ${JSON.stringify(res.body)}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(200);
  }
  throw new Error(
    `service not ready within ${String(withinMs)} ms (last: ${last}); stderr: ${service.stderr.join('')}`,
  );
}

/** How the process exited, or 'still running' after `ms` (the timer never outlives the wait). */
async function exitWithin(service: Service, ms: number): Promise<Exit | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((resolve) => {
    timer = setTimeout(() => {
      resolve('still running');
    }, ms);
  });
  try {
    return await Promise.race([service.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens one request on its own connection (no agent, no keep-alive) and leaves
 * writing the body to the caller; `answer` settles with the response.
 */
function open(
  base: string,
  method: string,
  path: string,
  options: { headers?: http.OutgoingHttpHeaders; socket?: net.Socket } = {},
): { req: http.ClientRequest; answer: Promise<Answer> } {
  const socket = options.socket;
  const req = http.request(`${base}${path}`, {
    method,
    agent: false,
    ...(socket !== undefined ? { createConnection: () => socket } : {}),
    headers: options.headers ?? {},
    timeout: 30_000,
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          // keep the raw text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, connection: res.headers.connection });
      });
    });
  });
  return { req, answer };
}

/** The headers of a JSON write, as an admin: this suite is about draining, not access control. */
const jsonHeaders = (payload: Buffer): http.OutgoingHttpHeaders => ({
  ...adminJson,
  'content-length': payload.length,
});

/** One whole request on its own connection; `onSent` runs once it is all handed to the socket. */
function request(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; onSent?: () => void; socket?: net.Socket } = {},
): Promise<Answer> {
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const { req, answer } = open(base, method, path, {
    headers: payload === undefined ? {} : jsonHeaders(payload),
    ...(options.socket !== undefined ? { socket: options.socket } : {}),
  });
  req.on('finish', () => options.onSent?.());
  req.end(payload);
  return answer;
}

/**
 * A POST whose headers and first half of the body go out now (`written` settles once they
 * are on the wire), the rest when `finish()` is called.
 */
function slowPost(
  base: string,
  path: string,
  body: unknown,
): { written: Promise<void>; finish: () => void; answer: Promise<Answer> } {
  const payload = Buffer.from(JSON.stringify(body));
  const half = Math.floor(payload.length / 2);
  // Kept alive, as a balancer's connection would be: the server must close it once answered.
  const { req, answer } = open(base, 'POST', path, { headers: { ...jsonHeaders(payload), connection: 'keep-alive' } });
  const written = new Promise<void>((resolve) =>
    req.write(payload.subarray(0, half), () => {
      resolve();
    }),
  );
  return { written, finish: () => req.end(payload.subarray(half)), answer };
}

const settle = (answer: Promise<Answer>): Promise<Outcome> =>
  answer.then(
    (res) => ({ res }),
    (error: unknown) => ({ error: error as NodeJS.ErrnoException }),
  );

/** A fresh TCP connection to the service, opened now and used later for exactly one request. */
async function connectTo(service: Service): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(service.url).port) });
  socket.on('error', () => {}); // the server may close it unused at shutdown
  await once(socket, 'connect');
  return socket;
}

async function allUserIds(service: Service): Promise<Set<number>> {
  const ids = new Set<number>();
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = cursor === null ? '?limit=100' : `?limit=100&cursor=${encodeURIComponent(cursor)}`;
    const res = await request(service.url, 'GET', `/users${query}`);
    expect(res.status).toBe(200);
    for (const user of res.body.items as { id: number }[]) ids.add(user.id);
    cursor = res.body.nextCursor as string | null;
    if (cursor === null) break;
  }
  return ids;
}

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

beforeAll(async () => {
  // Jest's global setup builds dist/ before the suites run; build here too when this file
  // runs after a source change without it, so it never tests a stale service.
  if (!existsSync(MAIN) || statSync(MAIN).mtimeMs < newestMtime(join(ROOT, 'src'))) {
    try {
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'pipe', encoding: 'utf8' });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`npm run build failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: error });
    }
  }
  workDir = mkdtempSync(join(tmpdir(), 'shutdown-e2e-'));
  const external = externalDatabaseUrl();
  if (external !== undefined) {
    const database = await createTestDatabase(external);
    if (database.url === undefined) throw new Error('no test database');
    dropDatabase = database.drop;
    databaseEnv = { DATABASE_URL: database.url };
  } else {
    // A real folder, so the data outlives the process and the restart can look for it.
    databaseEnv = { PGLITE_DATA_DIR: join(workDir, 'pglite') };
  }
}, 180_000);

afterAll(async () => {
  for (const service of services) {
    if (running(service)) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
  }
  try {
    await dropDatabase?.();
  } finally {
    if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  }
}, 60_000);

describe('SIGTERM under load loses no in-flight request', () => {
  const created: number[] = [];

  it('drains: readiness turns 503, every request in flight gets its 201, the process exits 0', async () => {
    const service = await startService();
    const runId = `${String(process.pid)}-${String(Date.now())}`;
    const user = (i: number) => ({ name: `Load ${String(i)}`, email: `load-${String(i)}-${runId}@example.org` });
    // Connections for the readiness probes, opened while the server is idle: a probe sent
    // after SIGTERM then never waits behind the burst in the accept queue.
    const probeSockets = await Promise.all(PROBE_DELAYS_MS.map(() => connectTo(service)));

    let sent = 0;
    const burst = Array.from({ length: LOAD }, (_, i) =>
      settle(request(service.url, 'POST', '/users', { body: user(i), onSent: () => sent++ })),
    );
    const slow = Array.from({ length: SLOW }, (_, i) => slowPost(service.url, '/users', user(LOAD + i)));

    // Signal while the burst is in flight, once the server has taken it in: every request is
    // on the wire and the server has answered one sent after them all. (A request still
    // unread in the kernel when the drain delay ends is refused or reset by design; on a
    // starved runner reading the burst can take longer than the delay.)
    const started = Date.now();
    while (sent < LOAD && Date.now() - started < 30_000) await sleep(2);
    expect(sent).toBe(LOAD);
    await Promise.all(slow.map((s) => s.written));
    expect((await request(service.url, 'GET', '/health')).status).toBe(200);
    service.child.kill('SIGTERM');

    // Readiness turns 503 as soon as the signal is handled, during the drain delay. Probes go
    // out over the first 150 ms after the signal: one read before the handler ran sees the
    // process still serving (200, or 'shutting_down' with lifecycle up if it finished late),
    // so what counts is that one read after it answers 503 with lifecycle down.
    const probes = await Promise.all(
      PROBE_DELAYS_MS.map(async (delay, i) => {
        await sleep(delay);
        return settle(request(service.url, 'GET', '/ready', { socket: probeSockets[i]! }));
      }),
    );
    for (const socket of probeSockets) socket.destroy();

    // The slow requests started before the signal; their bodies complete while the server
    // is closing (past the drain delay on any runner that is not starved).
    await sleep(1_000);
    for (const s of slow) s.finish();

    const outcomes = await Promise.all([...burst, ...slow.map((s) => settle(s.answer))]);
    const failures = outcomes
      .map((o, i) => ({
        i,
        status: o.res?.status,
        body: o.res?.body as unknown,
        error: o.error?.code ?? o.error?.message,
      }))
      .filter((f) => f.status !== 201);
    expect(failures).toEqual([]);
    for (const o of outcomes) created.push((o.res!.body as { id: number }).id);
    // Answered while draining, so each told its kept-alive client the connection is closing.
    expect(outcomes.slice(LOAD).map((o) => o.res?.connection)).toEqual(Array.from({ length: SLOW }, () => 'close'));
    expect(new Set(created).size).toBe(LOAD + SLOW);

    const draining = probes.find((p) => p.res?.body?.details?.lifecycle?.status === 'down');
    expect(draining?.res?.status ?? probes.map((p) => p.res ?? p.error?.code ?? p.error?.message)).toBe(503);
    // Terminus reports 'shutting_down' instead of 'error' once Nest's shutdown hooks have run.
    expect(['error', 'shutting_down']).toContain(draining?.res?.body?.status);
    expect(draining?.res?.body).toMatchObject({ error: { lifecycle: { status: 'down', state: 'draining' } } });

    expect(await exitWithin(service, 20_000)).toEqual({ code: 0, signal: null });
    const messages = service.logs.map((l) => l['msg']);
    expect(messages).toContain('shutdown: draining');
    expect(messages).toContain('shutdown: complete');
    expect(messages.indexOf('shutdown: draining')).toBeLessThan(messages.indexOf('shutdown: complete'));
    expect(messages).not.toContain('shutdown: grace period over, closing open connections');
    expect(service.logs.filter((l) => l['msg'] === 'unhandled error')).toEqual([]);
  }, 120_000);

  it('keeps every created user across a restart on the same data', async () => {
    expect(created).toHaveLength(LOAD + SLOW);
    const service = await startService();
    const ids = await allUserIds(service);
    expect(created.filter((id) => !ids.has(id))).toEqual([]);

    service.child.kill('SIGTERM');
    expect(await exitWithin(service, 20_000)).toEqual({ code: 0, signal: null });
  }, 120_000);
});
