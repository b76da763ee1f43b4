import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EmbeddedPostgres } from '../../src/database/embedded/embedded-postgres.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';
import { adminJson, TEST_KEYS_DIR } from '../support/tokens.js';

/**
 * Crash safety of the outbox with the built service (node dist/main.js):
 * enqueue 1000 notifications, SIGKILL the process in the middle of delivering
 * them, start it again on the same data, and check every one arrives. The only
 * duplicates allowed are jobs whose send was cut between the SMTP server's
 * acceptance and the worker recording it: at most the jobs in 'sending' at the kill.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist', 'main.js');
const TOTAL = 1000;
const BATCH = 20;
const CONCURRENCY = 4;
/** Each SMTP answer takes this long, so delivering 1000 takes seconds and the kill lands mid-way. */
const SMTP_DELAY_MS = 60;

type Exit = { code: number | null; signal: NodeJS.Signals | null };

interface Service {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stderr: string[];
  readonly exited: Promise<Exit>;
}

const services: Service[] = [];
let workDir: string | undefined;
let databaseEnv: Record<string, string>;
let databaseUrl: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
let smtp: SmtpSink;

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

const running = (service: Service) => service.child.exitCode === null && service.child.signalCode === null;

async function startService(): Promise<Service> {
  if (workDir === undefined) throw new Error('no work folder');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['DATABASE_URL'];
  Object.assign(env, {
    AUTH_KEYS_DIR: TEST_KEYS_DIR,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    LOG_ACCESS: 'false',
    DOCS_ENABLED: 'false',
    RATE_LIMIT_RATE: '0',
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    SMTP_URL: smtp.url,
    NOTIFY_CONCURRENCY: String(CONCURRENCY),
    NOTIFY_POLL_INTERVAL_MS: '100',
    NOTIFY_LEASE_MS: '2000',
    SHUTDOWN_GRACE_MS: '5000',
    ...databaseEnv,
  });
  const child = spawn(process.execPath, [MAIN], { cwd: workDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  const service: Service = { child, url: `http://127.0.0.1:${String(port)}`, stderr, exited };
  services.push(service);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!running(service)) throw new Error(`service exited before it was ready: ${stderr.join('')}`);
    try {
      if ((await fetch(`${service.url}/ready`)).status === 200) return service;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`service not ready: ${stderr.join('')}`);
    await sleep(200);
  }
}

async function queueDepth(service: Service): Promise<Record<string, number>> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const depth: Record<string, number> = {};
  for (const m of text.matchAll(/^notifications_queue_depth\{state="(\w+)"\} (\d+)$/gm)) depth[m[1]!] = Number(m[2]);
  return depth;
}

/** Runs `query` against the service's database while the service is down. */
async function withDatabase<T>(query: (client: pg.Client) => Promise<T>): Promise<T> {
  let embedded: EmbeddedPostgres | undefined;
  let url = databaseUrl;
  if (url === undefined) {
    embedded = new EmbeddedPostgres({ dataDir: join(workDir!, 'pglite'), port: 0, maxConnections: 2 });
    url = await embedded.start();
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await query(client);
  } finally {
    await client.end();
    await embedded?.stop();
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

beforeAll(async () => {
  // Jest's global setup builds dist/; build again when sources changed since (as shutdown.e2e does).
  // A build broken by unrelated work in progress falls back to the dist/ there is, like the global setup.
  if (!existsSync(MAIN) || statSync(MAIN).mtimeMs < newestMtime(join(ROOT, 'src'))) {
    try {
      execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'pipe', encoding: 'utf8' });
    } catch (error) {
      if (!existsSync(MAIN)) throw error;
      process.stderr.write(`notifications crash test: build failed, using the existing dist/\n`);
    }
  }
  workDir = mkdtempSync(join(tmpdir(), 'notifications-crash-'));
  smtp = await startSmtpSink({ delayMs: SMTP_DELAY_MS });
  const external = externalDatabaseUrl();
  if (external !== undefined) {
    const database = await createTestDatabase(external);
    if (database.url === undefined) throw new Error('no test database');
    dropDatabase = database.drop;
    databaseUrl = database.url;
    databaseEnv = { DATABASE_URL: database.url };
  } else {
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
  await smtp.close();
  try {
    await dropDatabase?.();
  } finally {
    if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  }
}, 60_000);

describe('notification delivery survives SIGKILL', () => {
  it('delivers all 1000 after a kill mid-delivery, duplicating only sends cut at the kill', async () => {
    const started = Date.now();
    const first = await startService();
    const ids: string[] = [];
    for (let i = 0; i < TOTAL; i += BATCH) {
      const answers = await Promise.all(
        Array.from({ length: Math.min(BATCH, TOTAL - i) }, async (_, j) => {
          const res = await fetch(`${first.url}/notifications`, {
            method: 'POST',
            headers: { ...adminJson, 'idempotency-key': `crash-${String(i + j)}` },
            body: JSON.stringify({
              channel: 'email',
              to: `user${String(i + j)}@example.org`,
              subject: `Crash test ${String(i + j)}`,
              body: `Message number ${String(i + j)}`,
            }),
          });
          expect(res.status).toBe(202);
          return ((await res.json()) as { id: string }).id;
        }),
      );
      ids.push(...answers);
    }
    const enqueuedMs = Date.now() - started;
    expect(new Set(ids).size).toBe(TOTAL);

    // Mid-delivery: some delivered, most not yet.
    const deliveredBefore = smtp.accepted().length;
    const deadline = Date.now() + 30_000;
    while (smtp.accepted().length < deliveredBefore + 20 && Date.now() < deadline) await sleep(5);
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const acceptedAtKill = smtp.accepted().length;
    expect(acceptedAtKill).toBeGreaterThan(0);
    expect(acceptedAtKill).toBeLessThan(TOTAL);

    const states = await withDatabase(async (client) => {
      const { rows } = await client.query<{ status: string; count: string }>(
        'SELECT status, count(*) AS count FROM notifications GROUP BY status',
      );
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.count)]));
    });
    const sendingAtKill = states['sending'] ?? 0;
    expect(sendingAtKill).toBeLessThanOrEqual(CONCURRENCY);
    expect(Object.values(states).reduce((a, b) => a + b, 0)).toBe(TOTAL);

    const restartAt = Date.now();
    const second = await startService();
    const until = Date.now() + 60_000;
    let depth = await queueDepth(second);
    while ((depth['delivered'] ?? 0) < TOTAL && Date.now() < until) {
      await sleep(250);
      depth = await queueDepth(second);
    }
    expect(depth).toMatchObject({ delivered: TOTAL, failed: 0, queued: 0, sending: 0 });
    const drainedMs = Date.now() - restartAt;

    const counts = new Map<string, number>();
    for (const m of smtp.accepted()) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
    const missing = ids.filter((id) => !counts.has(`<${id}@nest-async-api>`));
    expect(missing).toEqual([]);
    const duplicates = [...counts.values()].reduce((sum, n) => sum + (n - 1), 0);
    process.stdout.write(
      `notifications crash test: enqueued ${String(TOTAL)} in ${String(enqueuedMs)} ms; killed with ` +
        `${String(acceptedAtKill)} accepted by SMTP, states at kill ${JSON.stringify(states)}; ` +
        `restart drained the rest in ${String(drainedMs)} ms; duplicates ${String(duplicates)} ` +
        `(bound: ${String(sendingAtKill)} in 'sending' at the kill)\n`,
    );
    expect(duplicates).toBeLessThanOrEqual(sendingAtKill);
    expect(counts.size).toBe(TOTAL);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
