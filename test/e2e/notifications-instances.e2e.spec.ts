import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EmbeddedPostgres } from '../../src/database/embedded/embedded-postgres.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { externalDatabaseUrl, startTestApp, type TestApp } from '../support/test-app.js';
import { createTestDatabase } from '../support/test-database.js';
import { adminJson } from '../support/tokens.js';

/**
 * Two instances of the service on ONE database and one SMTP server: the
 * outbox claim (FOR UPDATE SKIP LOCKED) hands each job to exactly one of them.
 */

const TOTAL = 200;
let smtp: SmtpSink;
let embedded: EmbeddedPostgres | undefined;
let drop: (() => Promise<void>) | undefined;
const apps: TestApp[] = [];

beforeAll(async () => {
  // A short answer delay keeps sends in flight long enough for both workers to take part.
  smtp = await startSmtpSink({ delayMs: 15 });
  let url: string;
  const external = externalDatabaseUrl();
  if (external !== undefined) {
    const database = await createTestDatabase(external);
    if (database.url === undefined) throw new Error('no test database');
    url = database.url;
    drop = database.drop;
  } else {
    // One embedded server both apps connect to (each app would otherwise start its own).
    embedded = new EmbeddedPostgres({ dataDir: 'memory://', port: 0, maxConnections: 24 });
    url = await embedded.start();
  }
  const env = {
    DATABASE_URL: url,
    DB_POOL_SIZE: '8',
    SMTP_URL: smtp.url,
    NOTIFY_CONCURRENCY: '4',
    NOTIFY_POLL_INTERVAL_MS: '50',
    LOG_LEVEL: 'warn',
  };
  // One after the other, so the first applies the migrations and the second finds them done.
  apps.push(await startTestApp(env, { freshDatabase: false }));
  apps.push(await startTestApp(env, { freshDatabase: false }));
}, 120_000);

afterAll(async () => {
  for (const app of apps) await app.close();
  await smtp.close();
  await embedded?.stop();
  await drop?.();
}, 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function deliveredBy(app: TestApp): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const match = /^notifications_delivered_total (\d+)$/m.exec(text);
  return Number(match?.[1] ?? 0);
}

describe('two instances sharing one outbox', () => {
  it('deliver every notification exactly once between them', async () => {
    const ids: string[] = [];
    for (let i = 0; i < TOTAL; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, async (_, j) => {
          const app = apps[(i + j) % 2]!;
          const res = await fetch(`${app.url}/notifications`, {
            method: 'POST',
            headers: adminJson,
            body: JSON.stringify({
              channel: 'email',
              to: `twin${String(i + j)}@example.org`,
              subject: `Twin ${String(i + j)}`,
              body: 'Shared outbox',
            }),
          });
          expect(res.status).toBe(202);
          return ((await res.json()) as { id: string }).id;
        }),
      );
      ids.push(...batch);
    }

    const deadline = Date.now() + 60_000;
    while (smtp.accepted().length < TOTAL && Date.now() < deadline) await sleep(100);
    // Give a duplicate, if the claim allowed one, the time to show up.
    await sleep(500);

    const counts = new Map<string, number>();
    for (const m of smtp.accepted()) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
    expect(ids.filter((id) => !counts.has(`<${id}@nest-async-api>`))).toEqual([]);
    expect([...counts.entries()].filter(([, n]) => n > 1)).toEqual([]);
    expect(smtp.accepted()).toHaveLength(TOTAL);

    const perInstance = await Promise.all(apps.map(deliveredBy));
    process.stdout.write(`notifications instances test: delivered per instance ${JSON.stringify(perInstance)}\n`);
    expect(perInstance[0]! + perInstance[1]!).toBe(TOTAL);
    expect(perInstance[0]).toBeGreaterThan(0);
    expect(perInstance[1]).toBeGreaterThan(0);
  }, 90_000);
});
