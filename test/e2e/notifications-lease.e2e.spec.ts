import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { NotificationsWorker } from '../../src/notifications/notifications.worker.js';
import { startProxiedDatabase, type ProxiedDatabase } from '../support/proxied-database.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { proxyTo, type TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { adminJson } from '../support/tokens.js';

/**
 * Lease renewal of the notification worker: two instances on one database
 * (embedded, or a fresh one on DATABASE_URL's server), each through a TCP
 * proxy of its own that the test can cut, and one real SMTP server slower
 * than the lease (NOTIFY_LEASE_MS=1000, the smallest allowed).
 */

const LEASE_MS = 1000;
let smtp: SmtpSink;
let database: ProxiedDatabase;
let secondProxy: TcpProxy;
let direct: pg.Client;
const apps: TestApp[] = [];
const proxies: TcpProxy[] = [];
const closed = new Set<TestApp>();
/** Longer than the lease, so a shutdown waiting for a send has to keep renewing its claim. */
const GRACE_MS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  smtp = await startSmtpSink();
  database = await startProxiedDatabase({ maxConnections: 24 });
  const second = await proxyTo(database.directUrl, 5432);
  secondProxy = second.proxy;
  direct = new pg.Client({ connectionString: database.directUrl });
  await direct.connect();
  const env = {
    DB_POOL_SIZE: '4',
    // Through a proxy the embedded database looks external: its shared session rules out named statements.
    ...(database.embedded ? { DB_NAMED_STATEMENTS: 'false' } : {}),
    DB_CONNECT_TIMEOUT_MS: '1000',
    SMTP_URL: smtp.url,
    SMTP_TIMEOUT_MS: '10000',
    NOTIFY_CONCURRENCY: '2',
    NOTIFY_POLL_INTERVAL_MS: '50',
    NOTIFY_LEASE_MS: String(LEASE_MS),
    SHUTDOWN_GRACE_MS: String(GRACE_MS),
    LOG_LEVEL: 'warn',
  };
  // One after the other, so the first applies the migrations and the second finds them done.
  apps.push(await startTestApp({ ...env, DATABASE_URL: database.appUrl }, { freshDatabase: false }));
  proxies.push(database.proxy);
  apps.push(await startTestApp({ ...env, DATABASE_URL: second.url }, { freshDatabase: false }));
  proxies.push(secondProxy);
}, 120_000);

afterAll(async () => {
  for (const proxy of proxies) await proxy.restore();
  for (const app of apps) if (!closed.has(app)) await app.close();
  await direct.end();
  await secondProxy.close();
  await database.close();
  await smtp.close();
}, 60_000);

async function enqueue(app: TestApp, subject: string): Promise<{ id: string; at: number }> {
  const at = Date.now();
  const res = await fetch(`${app.url}/notifications`, {
    method: 'POST',
    headers: adminJson,
    body: JSON.stringify({ channel: 'email', to: 'lease@example.org', subject, body: 'Lease renewal' }),
  });
  expect(res.status).toBe(202);
  return { id: ((await res.json()) as { id: string }).id, at };
}

interface Row {
  status: string;
  attempts: number;
  locked_by: string | null;
}

async function row(id: string): Promise<Row> {
  const { rows } = await direct.query<Row>('SELECT status, attempts, locked_by FROM notifications WHERE id = $1', [id]);
  return rows[0]!;
}

/** Enqueues through the first app and waits until a worker holds the send at the server; returns which. */
async function sendInHand(subject: string): Promise<{ id: string; holder: number; claim: Row; holdsBefore: number }> {
  const holdsBefore = smtp.holds.length;
  const { id } = await enqueue(apps[0]!, subject);
  // Claimed, and its send waiting at the server for the answer to RCPT TO.
  await until('the send in hand', () => smtp.holds.length > holdsBefore);
  const claim = await row(id);
  expect(claim).toMatchObject({ status: 'sending', attempts: 1 });
  const holder = apps.findIndex((app) => app.app.get(NotificationsWorker).id === claim.locked_by);
  expect(holder).toBeGreaterThanOrEqual(0);
  return { id, holder, claim, holdsBefore };
}

async function sendingRows(): Promise<number> {
  const { rows } = await direct.query<{ n: string }>(
    `SELECT count(*) AS n FROM notifications WHERE status = 'sending'`,
  );
  return Number(rows[0]!.n);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function leases(app: TestApp): Promise<Record<string, number>> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^notifications_leases_total\{outcome="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

const received = (id: string) => smtp.all.filter((m) => m.messageId === `<${id}@nest-async-api>`);
// Nest's Logger is process-wide: the two apps' worker lines may land in either app's log, so both are read.
const logLines = () => apps.flatMap((app) => app.logs);
const givenUpLines = (id: string) =>
  logLines().filter((l) => String(l['msg']).startsWith('notification send aborted') && l['notificationId'] === id);
const renewalFailures = (workerId: string) =>
  logLines().filter((l) => String(l['msg']).includes('lease renewal failed') && l['workerId'] === workerId);

describe('notification leases', () => {
  it('keeps the claim of a send slower than the lease: one delivery, one attempt, the other instance never takes it', async () => {
    const before = await Promise.all(apps.map(leases));
    const { id, at } = await enqueue(apps[0]!, '[slow:3500] Slow relay');
    await until('the delivery', () => received(id).length > 0);
    // Time for a second claim (by either instance) to send it again, if the lease had lapsed.
    await sleep(2 * LEASE_MS);

    const mails = received(id);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.accepted).toBe(true);
    // The send really outlived the lease, several times over.
    expect(mails[0]!.receivedAt - at).toBeGreaterThanOrEqual(3500);
    expect(await row(id)).toEqual({ status: 'delivered', attempts: 1, locked_by: null });
    expect(await sendingRows()).toBe(0);

    const after = await Promise.all(apps.map(leases));
    const renewed = after.reduce((sum, m, i) => sum + (m['renewed'] ?? 0) - (before[i]!['renewed'] ?? 0), 0);
    // A renewal every third of the lease over 3.5 s: about ten; fewer than three would have let it lapse.
    expect(renewed).toBeGreaterThanOrEqual(3);
    for (const m of after) expect(m).toMatchObject({ lost: 0, lapsing: 0 });
    expect(givenUpLines(id)).toEqual([]);
  }, 30_000);

  it('aborts the send of a worker cut off from the database before its lease lapses; the job is delivered once', async () => {
    smtp.envelopeDelayMs = 2500;
    try {
      const { id, holder, claim, holdsBefore } = await sendInHand('Cut off mid-send');
      const other = 1 - holder;
      const before = await Promise.all(apps.map(leases));

      const cutAt = Date.now();
      await proxies[holder]!.cut();
      await until('the delivery by the other instance', () => received(id).length > 0);

      const holds = smtp.holds.slice(holdsBefore);
      expect(holds).toHaveLength(2);
      const [first, second] = holds;
      // The holder hung up before sending a byte of the message, and within a lease of the cut.
      expect(first!.abandoned).toBe(true);
      expect(first!.endedAt! - cutAt).toBeLessThan(LEASE_MS);
      // The other instance began only after the holder had given up: never two sends at once.
      expect(second!.startedAt).toBeGreaterThanOrEqual(first!.endedAt!);
      expect(second!.abandoned).toBe(false);

      await proxies[holder]!.restore();
      await until('the holder back on its database', async () => (await fetch(`${apps[holder]!.url}/ready`)).ok);
      // Time for the holder to do anything wrong with its old claim once it can.
      await sleep(2 * LEASE_MS);

      const mails = received(id);
      expect(mails).toHaveLength(1);
      expect(mails[0]!.accepted).toBe(true);
      expect(await row(id)).toEqual({ status: 'delivered', attempts: 2, locked_by: null });
      expect(await sendingRows()).toBe(0);
      // Logged once, by the holder.
      expect(givenUpLines(id)).toEqual([
        expect.objectContaining({ reason: 'lapsing', attempts: 1, leaseMs: LEASE_MS, workerId: claim.locked_by }),
      ]);
      expect(renewalFailures(claim.locked_by!)).toHaveLength(1);
      const after = await Promise.all(apps.map(leases));
      expect((after[holder]!['lapsing'] ?? 0) - (before[holder]!['lapsing'] ?? 0)).toBe(1);
      expect(after[holder]!['lost']).toBe(before[holder]!['lost']);
      // The other instance's send took 2.5 s too: it had to renew its own claim to finish.
      expect((after[other]!['renewed'] ?? 0) - (before[other]!['renewed'] ?? 0)).toBeGreaterThanOrEqual(3);
    } finally {
      smtp.envelopeDelayMs = 0;
    }
  }, 60_000);

  // Last: it closes one of the two apps.
  it('on shutdown renews the claim through the grace period, then aborts the send before releasing it', async () => {
    smtp.envelopeDelayMs = 2500 + GRACE_MS;
    try {
      const { id, holder, holdsBefore } = await sendInHand('In hand at shutdown');
      const closing = Date.now();
      closed.add(apps[holder]!);
      await apps[holder]!.close();
      await until('the delivery by the other instance', () => received(id).length > 0);

      const [first, second, ...rest] = smtp.holds.slice(holdsBefore);
      expect(rest).toEqual([]);
      // Waited the grace period (renewing: it is longer than the lease), then hung up before DATA...
      expect(first!.abandoned).toBe(true);
      expect(first!.endedAt! - closing).toBeGreaterThanOrEqual(GRACE_MS - 50);
      // ...and only then could the other instance take the job.
      expect(second!.startedAt).toBeGreaterThanOrEqual(first!.endedAt!);
      expect(second!.abandoned).toBe(false);
      await sleep(LEASE_MS);

      const mails = received(id);
      expect(mails).toHaveLength(1);
      expect(mails[0]!.accepted).toBe(true);
      // Released, not lapsed: the other instance claimed it at once as attempt 2.
      expect(await row(id)).toEqual({ status: 'delivered', attempts: 2, locked_by: null });
      expect(second!.startedAt - first!.endedAt!).toBeLessThan(LEASE_MS);
      expect(await sendingRows()).toBe(0);
      expect(
        logLines().filter((l) => l['msg'] === 'notifications worker: released unfinished jobs back to the queue'),
      ).toEqual([expect.objectContaining({ released: 1 })]);
      expect(givenUpLines(id)).toEqual([]);
    } finally {
      smtp.envelopeDelayMs = 0;
    }
  }, 60_000);
});
