import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { SimulatorClient } from '../../src/upstream/simulator.client.js';
import { startAppProcess, type AppProcess } from '../support/app-process.js';
import { ChatClient } from '../support/chat-client.js';
import { concrete, instanceVariable, queries } from '../support/dashboard.js';
import {
  prometheusAvailable,
  SERVICE_JOB,
  startPrometheus,
  type PrometheusProcess,
} from '../support/prometheus-process.js';
import { startSimulatorProcess } from '../support/simulator-process.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { externalDatabaseUrl } from '../support/test-app.js';
import { processDatabaseEnv } from '../support/test-database.js';
import { bearer, mintToken } from '../support/tokens.js';

/*
 * The Grafana dashboard against a real Prometheus (Debian's package): it
 * scrapes a running service every second with a config derived from
 * deploy/prometheus/prometheus.yml, while traffic goes through every module
 * (with the upstreams faulted so the resilience panels have something to
 * draw); then every query of every panel must come back with a number.
 */
const hasPrometheus = prometheusAvailable();
if (!hasPrometheus) console.warn('[skip] dashboard queries on a real Prometheus: prometheus not installed');
const describePrometheus = hasPrometheus ? describe : describe.skip;

const json = { 'content-type': 'application/json' };
/** A verified admin of its own: a fresh rate-limit bucket, and no access rule in the way. */
const ownKey = async () => bearer(await mintToken({ sub: `prometheus-${randomUUID()}`, scope: 'admin' }));
const randomValues = (n: number) => Array.from({ length: n }, () => Math.random() * 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describePrometheus('the Grafana dashboard on a real Prometheus', () => {
  let smtp: SmtpSink;
  let simulator: Awaited<ReturnType<typeof startSimulatorProcess>>;
  let service: AppProcess;
  let prometheus: PrometheusProcess;
  let instance: string;
  let dropDatabase: () => Promise<void> = async () => {};

  beforeAll(async () => {
    smtp = await startSmtpSink();
    simulator = await startSimulatorProcess();
    const database = await processDatabaseEnv(externalDatabaseUrl());
    dropDatabase = database.drop;
    service = await startAppProcess({
      ...database.env,
      SMTP_URL: smtp.url,
      NOTIFY_POLL_INTERVAL_MS: '50',
      POSTS_SERVICE_URL: simulator.url,
      COMMENTS_SERVICE_URL: simulator.url,
      // Posts fail fast and open their breaker for a while; comments time out.
      POSTS_BREAKER_FAILURES: '3',
      POSTS_BREAKER_COOLDOWN_MS: '2000',
      POSTS_RETRY_MAX_ATTEMPTS: '2',
      POSTS_RETRY_BASE_DELAY_MS: '10',
      COMMENTS_TIMEOUT_MS: '100',
      COMMENTS_RETRY_MAX_ATTEMPTS: '2',
      COMMENTS_RETRY_BASE_DELAY_MS: '10',
      // Anonymous callers run out at once (429s); the verified ones below each have their own bucket.
      RATE_LIMIT_ANONYMOUS_RATE: '1',
      RATE_LIMIT_ANONYMOUS_CAPACITY: '2',
      // One thread, one waiting task: a burst of work is partly refused (503s).
      WORKER_POOL_SIZE: '1',
      WORKER_POOL_MAX_QUEUE: '1',
    });
    instance = new URL(service.url).host;
    prometheus = await startPrometheus(instance);
  }, 90_000);

  afterAll(async () => {
    await prometheus?.stop();
    await service?.stop();
    await simulator?.stop();
    await smtp?.close();
    await dropDatabase();
  }, 30_000);

  /** The service target's state, once Prometheus lists it. */
  const serviceTarget = async () => (await prometheus.targets()).find((t) => t.scrapePool === SERVICE_JOB);

  /** Waits until Prometheus has scraped the service `count` more times, each successfully. */
  async function scrapes(count: number): Promise<void> {
    const seen = new Set<string>();
    const started = Date.now();
    let last = await serviceTarget();
    const since = last?.lastScrape;
    while (seen.size < count) {
      if (Date.now() - started > 30_000) {
        throw new Error(`${String(count)} scrapes not within 30 s: ${JSON.stringify(last)}\n${prometheus.output()}`);
      }
      await sleep(200);
      last = await serviceTarget();
      if (last !== undefined && last.lastScrape !== since && last.health === 'up') seen.add(last.lastScrape);
    }
  }

  async function call(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
    const res = await fetch(`${service.url}${path}`, {
      method,
      headers: headers ?? { ...(body === undefined ? {} : json), ...(await ownKey()) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  /** One pass over every module; the statuses it saw. */
  async function round(chat: ChatClient, i: number): Promise<number[]> {
    const statuses: number[] = [];
    const tag = randomUUID().slice(0, 8);
    const created = await call('POST', '/users', { name: `Prom ${tag}`, email: `prom-${tag}@example.org` });
    statuses.push(created.status);
    const id = String(created.body.id);
    for (const [method, path, body] of [
      ['GET', `/users/${id}`],
      ['PATCH', `/users/${id}`, { name: `Prom ${tag} renamed` }],
      ['GET', '/users?limit=5'],
      // Three, so the posts breaker, once open, turns some away.
      ['GET', `/profiles/${id}`],
      ['GET', `/profiles/${id}`],
      ['GET', `/profiles/${id}`],
      ['POST', '/process-data', { values: randomValues(1000) }],
      ['GET', '/users/999999'],
      ['GET', '/no/such/route'],
    ] as const) {
      statuses.push((await call(method, path, body)).status);
    }
    const stream = await fetch(`${service.url}/stream?count=3&intervalMs=0`, { headers: await ownKey() });
    await stream.text();
    statuses.push(stream.status);
    const subject = i % 2 === 0 ? `metrics ${tag}` : `metrics ${tag} [tempfail:1]`;
    const mail = { channel: 'email', to: `prom-${tag}@example.org`, subject, body: 'scraped' };
    statuses.push((await call('POST', '/notifications', mail)).status);
    chat.send({ type: 'message', room: 'prometheus', text: `round ${String(i)}` });
    await chat.nextOf('message');
    // Anonymous, over their tiny budget of POST /process-data.
    for (let k = 0; k < 4; k++) {
      statuses.push((await call('POST', '/process-data', { values: [1, 2, 3] }, json)).status);
    }
    // A burst the one-thread pool cannot all take.
    const burst = JSON.stringify({ values: randomValues(200_000) });
    statuses.push(
      ...(await Promise.all(Array.from({ length: 6 }, () => call('POST', '/process-data', burst)))).map(
        (r) => r.status,
      ),
    );
    statuses.push((await call('DELETE', `/users/${id}`)).status);
    return statuses;
  }

  it('scrapes the service with the shipped job and labels', async () => {
    await scrapes(1);
    const target = await serviceTarget();
    expect(target).toMatchObject({ health: 'up', lastError: '' });
    expect(target?.labels).toMatchObject({ job: SERVICE_JOB, instance, deployment: 'single' });
  });

  it('answers every query of every panel with data after traffic through every module', async () => {
    const sim = new SimulatorClient(simulator.url);
    await sim.setFaults('posts', { outage: true });
    await sim.setFaults('comments', { latencyMs: 300 });
    const chat = await ChatClient.open(service, {
      token: await mintToken({ sub: 'prometheus-chat', scope: 'chat:write' }),
    });
    const events = new AbortController();
    const statuses = new Set<number>();
    try {
      await chat.join('prometheus', 'prom');
      const live = await fetch(`${service.url}/events`, { headers: await ownKey(), signal: events.signal });
      expect(live.status).toBe(200);
      // Spread over several scrapes, so every rate has an increase to show.
      for (let i = 0; i < 5; i++) {
        for (const status of await round(chat, i)) statuses.add(status);
        await sleep(500);
      }
      // Every kind of answer the panels tell apart happened: success, client errors, limiting, overload.
      expect([200, 201, 202, 204, 404, 429, 503].filter((s) => !statuses.has(s))).toEqual([]);
      const delivered = () => smtp.accepted().filter((m) => m.subject.startsWith('metrics ')).length;
      for (let waited = 0; delivered() < 5 && waited < 10_000; waited += 100) await sleep(100);
      expect(delivered()).toBe(5);
      await scrapes(2);

      // The dashboard's instance variable lists the service.
      const variableQuery = /label_values\((.*), instance\)/.exec(instanceVariable?.definition ?? '')?.[1];
      expect(variableQuery).toBeDefined();
      const listed = await prometheus.query(`count by (instance) (${variableQuery!})`);
      expect(listed.map((s) => s.metric['instance'])).toEqual([instance]);

      const failures: string[] = [];
      for (const { panel, expr } of queries) {
        const promql = concrete(expr, { instance, job: SERVICE_JOB });
        const result = await prometheus.query(promql);
        if (result.length === 0) {
          failures.push(`${panel}: no series for ${promql}`);
        } else if (result.every((s) => Number.isNaN(Number(s.value[1])))) {
          failures.push(`${panel}: only NaN for ${promql}`);
        }
      }
      expect(failures).toEqual([]);
      expect(queries.length).toBeGreaterThan(30);
    } finally {
      events.abort();
      chat.close();
    }
  }, 120_000);
});
