import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  HttpUpstreamClient,
  UpstreamContractError,
  UpstreamStatusError,
} from '../../src/profiles/http-upstream.client.js';
import type { UpstreamCall } from '../../src/profiles/upstream.port.js';
import { ResiliencePipeline, type PipelineSettings } from '../../src/resilience/pipeline.js';
import { CancelledError, isTimeoutError } from '../../src/resilience/resilience.errors.js';
import { SimulatorClient } from '../../src/upstream/simulator.client.js';
import { startSimulatorProcess } from '../support/simulator-process.js';

// The upstream client on its undici pool against the simulator as its own
// process, over real sockets: what an abort, a timeout, a status or a bad
// body does to the call, the retries and the socket.

const settings: PipelineSettings = {
  breakerFailures: 1000,
  breakerFailureRatio: 1,
  breakerMinCalls: 1000,
  breakerWindowMs: 10_000,
  breakerSlowCallMs: 0,
  breakerCooldownMs: 1000,
  breakerHalfOpenProbes: 1,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 1,
  retryMaxDelayMs: 5,
  retryBudgetRatio: 1,
  timeoutMs: 2000,
  deadlineMs: 5000,
  bulkheadMaxConcurrent: 10,
  bulkheadMaxQueue: 10,
  bulkheadQueueTimeoutMs: 1000,
};

let simulator: Awaited<ReturnType<typeof startSimulatorProcess>>;
let sim: SimulatorClient;
const clients: HttpUpstreamClient[] = [];

const clientOf = (overrides: Partial<PipelineSettings> = {}, baseUrl = simulator.url): HttpUpstreamClient => {
  const client = new HttpUpstreamClient(new ResiliencePipeline('posts', { ...settings, ...overrides }), baseUrl, 4);
  clients.push(client);
  return client;
};

const callWith = (signal: AbortSignal = new AbortController().signal, requestId = 'client-e2e'): UpstreamCall => ({
  signal,
  deadlineAt: Date.now() + 3000,
  requestId,
});

/** Polls until `check` holds (the simulator counts a cut request when its socket closes). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  simulator = await startSimulatorProcess();
  sim = new SimulatorClient(simulator.url);
});
afterAll(async () => {
  await simulator.stop();
});
beforeEach(async () => {
  await sim.reset();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('HttpUpstreamClient on undici', () => {
  it('GETs the JSON array, sending X-Request-Id, and keeps the socket alive for the next call', async () => {
    const client = clientOf();
    const posts = await client.getArray<{ userId: number }>('users/7/posts', callWith(undefined, 'rid-1'));
    expect(posts.length).toBeGreaterThan(0);
    for (const p of posts) expect(p.userId).toBe(7);
    await client.getArray('users/7/comments', callWith(undefined, 'rid-2'));
    const state = await sim.state();
    expect(state.requestIds).toEqual(['rid-1', 'rid-2']);
    for (let i = 0; i < 10; i++) await client.getArray('users/7/posts', callWith());
    // Twelve calls one after another: kept-alive sockets, not one each.
    expect(client.stats().connected).toBeLessThanOrEqual(2);
    expect(client.stats().running).toBe(0);
  });

  // 1000 ms: the caller's deadline comes before the 2000 ms attempt timeout, so the call runs on its signal.
  it.each([3000, 1000])(
    "an aborted call (deadline in %p ms) rejects with the caller's reason, cuts the upstream request, and the next call works",
    async (deadlineInMs) => {
      const client = clientOf();
      await sim.setFaults('posts', { latencyMs: 5000 });
      const caller = new AbortController();
      const reason = new CancelledError('profile', 'client left');
      const pending = client.getArray('users/1/posts', {
        ...callWith(caller.signal),
        deadlineAt: Date.now() + deadlineInMs,
      });
      await eventually(async () => (await sim.state()).stats.posts.inFlight === 1);
      const started = Date.now();
      caller.abort(reason);
      await expect(pending).rejects.toBe(reason);
      // The socket was destroyed, not left to finish the 5 s answer.
      await eventually(async () => (await sim.state()).stats.posts.inFlight === 0);
      expect(Date.now() - started).toBeLessThan(1500);
      // The pool holds no request for it any more (it may have opened a fresh, free socket).
      await eventually(async () => {
        const { running, pending } = client.stats();
        return Promise.resolve(running === 0 && pending === 0);
      });

      await sim.setFaults('posts', { latencyMs: 0 });
      await expect(client.getArray('users/1/posts', callWith())).resolves.not.toHaveLength(0);
      expect((await sim.state()).stats.posts).toMatchObject({ requests: 2, inFlight: 0 });
    },
  );

  it("times out an attempt with scope 'attempt', cutting each attempt's request upstream", async () => {
    const client = clientOf({ timeoutMs: 100, retryMaxAttempts: 2 });
    await sim.setFaults('posts', { latencyMs: 2000 });
    const started = Date.now();
    const error = await client.getArray('users/1/posts', callWith()).catch((e: unknown) => e);
    expect(isTimeoutError(error) && error.scope === 'attempt').toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    await eventually(async () => (await sim.state()).stats.posts.inFlight === 0);
    expect((await sim.state()).stats.posts.requests).toBe(2);
  });

  it('retries a 503 and returns the later success; never retries a 404', async () => {
    const client = clientOf();
    await sim.setFaults('posts', { errorRate: 1, errorStatus: 503 });
    const unavailable = await client.getArray('users/1/posts', callWith()).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(UpstreamStatusError);
    expect(unavailable).toMatchObject({ status: 503 });
    expect((await sim.state()).stats.posts.requests).toBe(3);

    await sim.reset();
    await sim.setFaults('posts', { errorRate: 1, errorStatus: 404 });
    const missing = await client.getArray('users/1/posts', callWith()).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'UpstreamStatusError', status: 404 });
    expect((await sim.state()).stats.posts.requests).toBe(1);

    // The sockets that carried error answers are still good.
    await sim.reset();
    await expect(client.getArray('users/1/posts', callWith())).resolves.not.toHaveLength(0);
  });

  it('passes Retry-After of a 503 to the retry', async () => {
    const client = clientOf({ retryMaxAttempts: 2 });
    await sim.setFaults('posts', { errorRate: 1, errorStatus: 503, retryAfterS: 1 });
    const started = Date.now();
    await expect(client.getArray('users/1/posts', callWith())).rejects.toMatchObject({ status: 503 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect((await sim.state()).stats.posts.requests).toBe(2);
  });
});

describe('HttpUpstreamClient against a hand-written upstream', () => {
  let server: http.Server;
  let base: string;
  let lastHeaders: IncomingHttpHeaders = {};
  let answer = '[]';

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      lastHeaders = req.headers;
      res.writeHead(req.url === '/base/redirect' ? 302 : 200, {
        'content-type': 'application/json',
        ...(req.url === '/base/redirect' ? { location: '/base/users/1/posts' } : {}),
      });
      res.end(answer);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/base`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('resolves paths under the base path and sends accept, X-Request-Id and X-Deadline-Ms', async () => {
    answer = '[{"id":1}]';
    const client = clientOf({}, base);
    const call = { ...callWith(undefined, 'rid-headers'), deadlineAt: Date.now() + 1500 };
    await expect(client.getArray('users/1/posts', call)).resolves.toEqual([{ id: 1 }]);
    expect(lastHeaders['accept']).toBe('application/json');
    expect(lastHeaders['x-request-id']).toBe('rid-headers');
    const deadlineMs = Number(lastHeaders['x-deadline-ms']);
    expect(deadlineMs).toBeGreaterThan(1000);
    expect(deadlineMs).toBeLessThanOrEqual(1500);
  });

  it('rejects a 2xx body that is not an array with a contract error, not retried', async () => {
    answer = '{"posts":[]}';
    const client = clientOf({}, base);
    await expect(client.getArray('users/1/posts', callWith())).rejects.toBeInstanceOf(UpstreamContractError);
  });

  it('does not follow redirects', async () => {
    answer = '[]';
    const client = clientOf({}, base);
    await expect(client.getArray('redirect', callWith())).rejects.toMatchObject({ status: 302 });
  });
});
