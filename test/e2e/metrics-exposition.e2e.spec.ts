import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { ChatClient } from '../support/chat-client.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { bearer, mintToken } from '../support/tokens.js';

/*
 * Every module's metrics, as /metrics serves them after some real traffic, pass
 * `promtool check metrics` (Debian's prometheus package): valid exposition and
 * none of its lint findings (a counter without _total, a gauge with it, bad
 * units…). Skips with a notice where promtool is not installed.
 */
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' });
const hasPromtool = promtool.error === undefined && promtool.status === 0;
if (!hasPromtool) console.warn('[skip] promtool check metrics: promtool not installed (Debian package prometheus)');
const describePromtool = hasPromtool ? describe : describe.skip;

function checkMetrics(text: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** A fresh verified caller (its own rate-limit bucket); an admin, as this suite is not about access control. */
const ownKey = async () => bearer(await mintToken({ sub: `metrics-${randomUUID()}`, scope: 'admin' }));

describePromtool('/metrics exposition (promtool check metrics)', () => {
  let smtp: SmtpSink;
  let t: TestApp;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    t = await startTestApp({
      SMTP_URL: smtp.url,
      NOTIFY_POLL_INTERVAL_MS: '50',
      // On, so the limiter's labelled series exist.
      RATE_LIMIT_RATE: '1',
      RATE_LIMIT_CAPACITY: '2',
    });
  }, 60_000);

  afterAll(async () => {
    await t.close();
    await smtp.close();
  }, 30_000);

  it('fails on a lint finding, so a clean result means something', () => {
    const result = checkMetrics('# HELP things_total Things\n# TYPE things_total gauge\nthings_total 1\n');
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(/things_total/);
  });

  it('passes for every module after users, profiles, compute, notifications, chat, SSE and rate limiting ran', async () => {
    const json = { 'content-type': 'application/json' };
    const created = await fetch(`${t.url}/users`, {
      method: 'POST',
      headers: { ...json, ...(await ownKey()) },
      body: JSON.stringify({ name: 'Metrics', email: `metrics-${randomUUID().slice(0, 8)}@example.org` }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    expect((await fetch(`${t.url}/users/${String(id)}`, { headers: await ownKey() })).status).toBe(200);
    expect((await fetch(`${t.url}/users/999999`, { headers: await ownKey() })).status).toBe(404);
    expect((await fetch(`${t.url}/no/such/route`, { headers: await ownKey() })).status).toBe(404);
    // Upstream calls through the posts/comments pipelines (the bundled simulator).
    expect((await fetch(`${t.url}/profiles/${String(id)}`, { headers: await ownKey() })).status).toBe(200);
    const computed = await fetch(`${t.url}/process-data`, {
      method: 'POST',
      headers: { ...json, ...(await ownKey()) },
      body: JSON.stringify({ values: [1, 2, 3, 4] }),
    });
    expect(computed.status).toBe(200);
    const stream = await fetch(`${t.url}/stream?count=3&intervalMs=0`, { headers: await ownKey() });
    expect(await stream.text()).toContain('data_2');
    // One client over its budget: a 429.
    const limited = [];
    for (let i = 0; i < 4; i++) limited.push((await fetch(`${t.url}/users?limit=1`)).status);
    expect(limited).toContain(429);

    const queued = await fetch(`${t.url}/notifications`, {
      method: 'POST',
      headers: { ...json, ...(await ownKey()) },
      body: JSON.stringify({ channel: 'email', to: 'metrics@example.org', subject: 'metrics', body: 'hi' }),
    });
    expect(queued.status).toBe(202);
    const { id: notificationId } = (await queued.json()) as { id: string };

    const chat = await ChatClient.open(t);
    const events = new AbortController();
    try {
      await chat.join('metrics', 'prom');
      chat.send({ type: 'message', room: 'metrics', text: 'scrape me' });
      await chat.nextOf('message');
      chat.send('not json');
      await chat.error('invalid_json');
      const live = await fetch(`${t.url}/events`, { headers: await ownKey(), signal: events.signal });
      expect(live.status).toBe(200);
      for (;;) {
        const state = await fetch(`${t.url}/notifications/${notificationId}`, { headers: await ownKey() });
        if (((await state.json()) as { status: string }).status === 'delivered') break;
        await new Promise((r) => setTimeout(r, 50));
      }

      const res = await fetch(`${t.url}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      // The traffic above left labelled series in every module.
      for (const series of [
        /^http_request_duration_seconds_bucket\{.*route="\/users\/:id".*\} [1-9]/m,
        /^resilience_breaker_state\{policy="posts"\} 0$/m,
        /^profile_cache_requests_total\{result="miss"\} [1-9]/m,
        /^worker_pool_completed_tasks [1-9]/m,
        /^rate_limit_rejections_total\{.*\} [1-9]/m,
        /^notifications_delivery_latency_seconds_count [1-9]/m,
        /^notifications_queue_depth\{state="delivered"\} [1-9]/m,
        /^chat_connections 1$/m,
        /^chat_errors_total\{code="invalid_json"\} 1$/m,
        /^sse_subscribers 1$/m,
        /^sse_events_sent_total [1-9]/m,
        /^db_pool_max_connections [1-9]/m,
        /^nodejs_eventloop_lag_p99_seconds /m,
      ]) {
        expect(text).toMatch(series);
      }

      const result = checkMetrics(text);
      expect(result.output).toBe('');
      expect(result.status).toBe(0);
    } finally {
      events.abort();
      chat.close();
    }
  }, 60_000);
});
