import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/config.error.js';
import { loadUpstreamConfig } from '../config/upstream-config.js';
import {
  simulatedPosts,
  startSimulator,
  type SimulatedComment,
  type FaultPatch,
  type SimulatedPost,
  type SimulatorHandle,
  type SimulatorState,
} from './simulator.js';
import { SimulatorClient } from './simulator.client.js';

let sim: SimulatorHandle;
let client: SimulatorClient;

const get = (path: string, init: RequestInit = {}) => fetch(`${sim.url}${path}`, init);
/** A response's JSON, loosely typed for assertions. */
const json = async (res: Response): Promise<any> => res.json();
const elapsedSince = (start: number) => performance.now() - start;

/** The cause's code of a failed fetch (undici wraps socket errors as "fetch failed"). */
async function socketError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error: any) {
    return String(error?.cause?.code ?? error?.code ?? error?.name);
  }
  throw new Error('expected the request to fail');
}

/** Polls the state until `check` holds: a request reaches the simulator a little after fetch() starts. */
async function untilState(check: (state: SimulatorState) => boolean, timeoutMs = 3000): Promise<void> {
  const giveUpAt = performance.now() + timeoutMs;
  for (;;) {
    const state = await client.state();
    if (check(state)) return;
    if (performance.now() > giveUpAt) throw new Error(`state never matched: ${JSON.stringify(state.stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A posts request that resolves with its status and when it was answered (body read), from `start`. */
const timedPost = async (start: number, init: RequestInit = {}): Promise<{ status: number; at: number }> => {
  const res = await get('/users/1/posts', init);
  await res.arrayBuffer();
  return { status: res.status, at: elapsedSince(start) };
};

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 7 });
  client = new SimulatorClient(`${sim.url}/`);
});

afterAll(async () => {
  await sim.close();
});

beforeEach(async () => {
  await client.reset();
});

describe('upstream simulator: data', () => {
  it('serves the same posts and comments for the same id, and different ones for another', async () => {
    const first = (await json(await get('/users/42/posts'))) as SimulatedPost[];
    const again = await json(await get('/users/42/posts'));
    const other = await json(await get('/users/43/posts'));
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);

    expect(first.length).toBeGreaterThanOrEqual(3);
    expect(first.length).toBeLessThanOrEqual(5);
    first.forEach((post, i) => {
      expect(post).toEqual({ userId: 42, id: 4200 + i + 1, title: expect.any(String), body: expect.any(String) });
    });

    const res = await get('/users/42/comments');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const comments = (await json(res)) as SimulatedComment[];
    expect(await json(await get('/users/42/comments'))).toEqual(comments);
    expect(comments.length).toBeGreaterThanOrEqual(2);
    const postIds = new Set(first.map((p) => p.id));
    for (const comment of comments) {
      expect(comment).toEqual({
        postId: expect.any(Number),
        id: expect.any(Number),
        name: expect.any(String),
        email: expect.stringMatching(/^\S+@\S+$/),
        body: expect.any(String),
      });
      expect(postIds.has(comment.postId)).toBe(true);
    }
    expect(new Set(comments.map((c) => c.id)).size).toBe(comments.length);
  });

  it('serves large ids and answers 400 JSON for ids that are not positive integers', async () => {
    expect((await get('/users/2147483647/posts')).status).toBe(200);
    for (const id of ['abc', '1.5', '0', '-3', '1e3']) {
      const res = await get(`/users/${id}/posts`);
      expect(res.status).toBe(400);
      expect(await json(res)).toMatchObject({ statusCode: 400, message: expect.stringContaining('id') });
    }
  });
});

describe('upstream simulator: faults', () => {
  it('adds the configured latency to its group only', async () => {
    const { knobs } = await client.setFaults('posts', { latencyMs: 150 });
    expect(knobs.posts.latencyMs).toBe(150);
    expect(knobs.comments.latencyMs).toBe(0);
    const start = performance.now();
    expect((await get('/users/1/posts')).status).toBe(200);
    expect(elapsedSince(start)).toBeGreaterThanOrEqual(145);
  });

  it('answers every request with errorStatus and Retry-After at errorRate 1', async () => {
    await client.setFaults('comments', { errorRate: 1, errorStatus: 502, retryAfterS: 3 });
    for (let i = 0; i < 5; i++) {
      const res = await get('/users/1/comments');
      expect(res.status).toBe(502);
      expect(res.headers.get('retry-after')).toBe('3');
      expect(await json(res)).toMatchObject({ statusCode: 502, message: 'simulated fault' });
    }
    expect((await get('/users/1/posts')).status).toBe(200);
    expect((await client.state()).stats.comments).toMatchObject({ requests: 5, errors: 5 });
  });

  it('fails about half the requests at errorRate 0.5, the same ones for the same seed', async () => {
    const run = async (n: number) => {
      await client.setFaults('posts', { errorRate: 0.5, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < n; i++) statuses.push((await get('/users/1/posts')).status);
      return statuses;
    };
    const statuses = await run(100);
    const failed = statuses.filter((s) => s === 503).length;
    expect(failed).toBeGreaterThanOrEqual(30);
    expect(failed).toBeLessThanOrEqual(70);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect((await client.state()).stats.posts.errors).toBe(failed);
    // Re-setting the seed replays the sequence.
    expect(await run(20)).toEqual(statuses.slice(0, 20));
  });

  it('answers errorStatus at once during an outage, skipping the latency', async () => {
    await client.setFaults('all', { outage: true, latencyMs: 5000 });
    const start = performance.now();
    const res = await get('/users/1/posts');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
    expect((await get('/users/1/comments')).status).toBe(503);
    expect(elapsedSince(start)).toBeLessThan(1000);
  });

  it('resets the connection without an answer', async () => {
    await client.setFaults('posts', { reset: true });
    expect(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']).toContain(await socketError(get('/users/1/posts')));
    const raw = await new Promise<string>((resolve) => {
      http
        .get(`${sim.url}/users/2/posts`, () => {
          resolve('answered');
        })
        .on('error', (error: NodeJS.ErrnoException) => {
          resolve(error.code ?? error.message);
        });
    });
    expect(raw).toBe('ECONNRESET');
    expect((await client.state()).stats.posts).toMatchObject({ requests: 2, resets: 2, inFlight: 0 });
  });

  it('drips the body in chunks over time, so a client deadline cuts it off', async () => {
    await client.setFaults('posts', { slowDripMs: 40 });
    const start = performance.now();
    const chunks = await new Promise<Buffer[]>((resolve, reject) => {
      http
        .get(`${sim.url}/users/5/posts`, (res) => {
          const received: Buffer[] = [];
          res.on('data', (chunk: Buffer) => received.push(chunk));
          res.on('end', () => {
            resolve(received);
          });
        })
        .on('error', reject);
    });
    expect(elapsedSince(start)).toBeGreaterThanOrEqual(350);
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8'))).toEqual(simulatedPosts(5));

    const res = await get('/users/5/posts', { signal: AbortSignal.timeout(150) });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('gives up at X-Deadline-Ms with a 504 and counts it', async () => {
    await client.setFaults('comments', { latencyMs: 2000 });
    const start = performance.now();
    const res = await get('/users/1/comments', { headers: { 'x-deadline-ms': '100' } });
    const took = elapsedSince(start);
    expect(res.status).toBe(504);
    expect(took).toBeGreaterThanOrEqual(95);
    expect(took).toBeLessThan(1500);

    await client.setFaults('comments', { latencyMs: 20 });
    expect((await get('/users/1/comments', { headers: { 'x-deadline-ms': '1000' } })).status).toBe(200);
    expect((await client.state()).stats.comments.deadlineCutoffs).toBe(1);
  });

  it('cuts a dripping body off at X-Deadline-Ms', async () => {
    await client.setFaults('posts', { slowDripMs: 50 });
    const res = await get('/users/1/posts', { headers: { 'x-deadline-ms': '120' } });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect((await client.state()).stats.posts.deadlineCutoffs).toBe(1);
  });

  it('counts concurrent requests per group', async () => {
    await client.setFaults('posts', { latencyMs: 200 });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => get(`/users/${String(i + 1)}/posts`)));
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
    const { stats } = await client.state();
    expect(stats.posts).toMatchObject({ requests: 8, inFlight: 0, maxInFlight: 8 });
    expect(stats.comments.maxInFlight).toBe(0);
  });

  it('adds a seeded random jitter of 0..jitterMs', async () => {
    // A 40 ms deadline against 0..80 ms of jitter: roughly half are cut off, the same half per seed.
    const run = async () => {
      await client.setFaults('posts', { jitterMs: 80, seed: 5 });
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        statuses.push((await get('/users/1/posts', { headers: { 'x-deadline-ms': '40' } })).status);
      }
      return statuses;
    };
    const statuses = await run();
    expect(statuses).toContain(200);
    expect(statuses).toContain(504);
    expect(await run()).toEqual(statuses);
  });
});

describe('upstream simulator: latency tail', () => {
  /** Statuses of `n` posts requests in turn, each with a 20 ms deadline: a tail of 600 s shows as a 504. */
  const statusesWithTail = async (n: number, knobs: FaultPatch): Promise<number[]> => {
    await client.setFaults('posts', knobs);
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) {
      statuses.push((await get('/users/1/posts', { headers: { 'x-deadline-ms': '20' } })).status);
    }
    return statuses;
  };

  it('sends about tailRate of the requests to tailLatencyMs, the same ones per seed', async () => {
    const tail = { tailRate: 0.05, tailLatencyMs: 600_000, seed: 11 };
    const statuses = await statusesWithTail(400, tail);
    const inTail = statuses.filter((s) => s === 504).length;
    expect(inTail).toBeGreaterThanOrEqual(8);
    expect(inTail).toBeLessThanOrEqual(36);
    expect(statuses.filter((s) => s === 200)).toHaveLength(400 - inTail);
    expect((await client.state()).stats.posts.deadlineCutoffs).toBe(inTail);
    // Setting the seed restarts the tail sequence.
    expect(statuses.slice(0, 100)).toContain(504);
    expect(await statusesWithTail(100, tail)).toEqual(statuses.slice(0, 100));

    expect(await statusesWithTail(100, { ...tail, tailRate: 0 })).toEqual(Array(100).fill(200));
  });

  it('restarts the tail sequence on reset', async () => {
    const tail = { tailRate: 0.5, tailLatencyMs: 600_000 };
    const first = await statusesWithTail(20, tail);
    expect(first).toContain(200);
    expect(first).toContain(504);
    await client.reset();
    expect(await statusesWithTail(20, tail)).toEqual(first);
  });

  it('adds jitter to the tail, and leaves the jitter and error draws as they are without a tail', async () => {
    // 30 ms plus 0..80 ms of jitter against a 70 ms deadline, as a fixed latency and as a tail of rate 1.
    const run = async (knobs: FaultPatch) => {
      await client.setFaults('posts', { jitterMs: 80, seed: 5, ...knobs });
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        statuses.push((await get('/users/1/posts', { headers: { 'x-deadline-ms': '70' } })).status);
      }
      return statuses;
    };
    // As the simulator drew them before the tail knobs existed: they must not move.
    const fixed = [504, 200, 200, 504, 504, 504, 504, 200];
    expect(await run({ latencyMs: 30 })).toEqual(fixed);
    expect(await run({ latencyMs: 0, tailRate: 1, tailLatencyMs: 30 })).toEqual(fixed);

    const errors = async (knobs: FaultPatch) => {
      await client.setFaults('comments', { errorRate: 0.5, seed: 42, ...knobs });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await get('/users/1/comments')).status);
      return statuses;
    };
    const plain = [
      503, 200, 200, 200, 503, 200, 503, 200, 200, 503, 503, 503, 503, 200, 503,
      200, 200, 503, 503, 200, 200, 503, 200, 503, 503, 200, 200, 503, 503, 503,
    ]; // prettier-ignore
    expect(await errors({})).toEqual(plain);
    expect(await errors({ tailRate: 0.5, tailLatencyMs: 0 })).toEqual(plain);
  });
});

describe('upstream simulator: capacity', () => {
  it('serves at most capacity requests at once and queues the rest, so answers come in waves', async () => {
    await client.setFaults('posts', { capacity: 2, latencyMs: 100 });
    const start = performance.now();
    const answers = await Promise.all(Array.from({ length: 6 }, () => timedPost(start)));
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    // Two at a time: the 3rd and 4th answers cannot come before 200 ms, the 5th and 6th before 300 ms.
    const times = answers.map((a) => a.at).sort((a, b) => a - b);
    times.forEach((at, i) => {
      expect(at).toBeGreaterThanOrEqual(100 * (Math.floor(i / 2) + 1) - 5);
    });
    expect(times[5]).toBeLessThan(2000);
    expect((await client.state()).stats.posts).toMatchObject({
      requests: 6,
      inFlight: 0,
      maxInFlight: 6,
      queued: 0,
      maxQueued: 4,
    });
    expect((await client.state()).stats.comments.maxQueued).toBe(0);
  });

  it('answers 504 when the deadline passes in the queue, or leaves less than the latency', async () => {
    await client.setFaults('posts', { capacity: 1, latencyMs: 300 });
    const start = performance.now();
    const first = timedPost(start);
    await untilState((state) => state.stats.posts.inFlight === 1);

    // Queued behind a 300 ms request with a 450 ms deadline: admitted with about 150 ms left, cut off then.
    const sentAt = performance.now();
    const short = await get('/users/1/posts', { headers: { 'x-deadline-ms': '450' } });
    expect(short.status).toBe(504);
    expect((await json(short)).message).toContain('exceeds the deadline');
    expect(elapsedSince(sentAt)).toBeGreaterThanOrEqual(445);
    expect((await first).status).toBe(200);

    await client.setFaults('posts', { latencyMs: 5000 });
    const holder = new AbortController();
    const held = timedPost(start, { signal: holder.signal }).catch(() => 'aborted');
    await untilState((state) => state.stats.posts.inFlight === 1);
    const queuedAt = performance.now();
    const expired = await get('/users/1/posts', { headers: { 'x-deadline-ms': '100' } });
    expect(expired.status).toBe(504);
    expect((await json(expired)).message).toContain('waiting for a service slot');
    const took = elapsedSince(queuedAt);
    expect(took).toBeGreaterThanOrEqual(95);
    expect(took).toBeLessThan(3000);
    expect((await client.state()).stats.posts).toMatchObject({ deadlineCutoffs: 2, queued: 0, inFlight: 1 });
    holder.abort();
    expect(await held).toBe('aborted');
    await untilState((state) => state.stats.posts.inFlight === 0);
  });

  it('drops a client that disconnects while queued from the queue, taking no slot with it', async () => {
    await client.setFaults('posts', { capacity: 1, latencyMs: 300 });
    const start = performance.now();
    const first = timedPost(start);
    await untilState((state) => state.stats.posts.inFlight === 1);
    const leaving = new AbortController();
    const gone = get('/users/1/posts', { signal: leaving.signal }).then(
      () => 'answered',
      (error: unknown) => (error as Error).name,
    );
    await untilState((state) => state.stats.posts.queued === 1);
    const second = timedPost(start);
    await untilState((state) => state.stats.posts.queued === 2);
    const third = timedPost(start);
    await untilState((state) => state.stats.posts.queued === 3);

    leaving.abort();
    expect(await gone).toBe('AbortError');
    await untilState((state) => state.stats.posts.queued === 2, 250);
    expect((await client.state()).stats.posts.inFlight).toBe(3);

    // In arrival order, one at a time: the leaver freed no slot for the others to take early.
    const [a, b, c] = await Promise.all([first, second, third]);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(b.at).toBeGreaterThanOrEqual(595);
    expect(c.at).toBeGreaterThanOrEqual(895);
    expect(b.at).toBeLessThan(c.at);
    expect((await client.state()).stats.posts).toMatchObject({ requests: 4, inFlight: 0, queued: 0, maxQueued: 3 });
  });

  it('admits waiters at once when capacity is raised', async () => {
    await client.setFaults('posts', { capacity: 1, latencyMs: 600 });
    const start = performance.now();
    const answers = Promise.all(Array.from({ length: 3 }, () => timedPost(start)));
    await untilState((state) => state.stats.posts.queued === 2);
    const raised = await client.setFaults('posts', { capacity: 3 });
    expect(raised.stats.posts).toMatchObject({ queued: 0, inFlight: 3 });
    // One at a time, the second answer would come after 1200 ms.
    const done = await answers;
    expect(done.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(Math.max(...done.map((a) => a.at))).toBeLessThan(1150);
  });

  it('holds back the next admissions when capacity is lowered, counting those already in service', async () => {
    await client.setFaults('posts', { latencyMs: 300 });
    const start = performance.now();
    const unlimited = Promise.all(Array.from({ length: 3 }, () => timedPost(start)));
    await untilState((state) => state.stats.posts.inFlight === 3);
    await client.setFaults('posts', { capacity: 1 });
    const later = timedPost(start);
    await untilState((state) => state.stats.posts.queued === 1);
    expect((await unlimited).map((a) => a.status)).toEqual([200, 200, 200]);
    // Admitted only once all three left: their 300 ms, then its own.
    const { status, at } = await later;
    expect(status).toBe(200);
    expect(at).toBeGreaterThanOrEqual(595);
  });
});

describe('upstream simulator: request ids and admin', () => {
  it('records the X-Request-Id of data requests, the last 1000 only', async () => {
    await get('/users/1/posts', { headers: { 'x-request-id': 'a-1' } });
    await get('/users/1/comments', { headers: { 'x-request-id': 'a-2' } });
    await get('/users/1/posts');
    expect((await client.state()).requestIds).toEqual(['a-1', 'a-2']);

    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          get('/users/1/posts', { headers: { 'x-request-id': `b-${String(batch * 100 + i)}` } }).then((r) =>
            r.arrayBuffer(),
          ),
        ),
      );
    }
    const { requestIds } = await client.state();
    expect(requestIds).toHaveLength(1000);
    expect(requestIds).not.toContain('a-1');
    expect(requestIds.every((id) => id.startsWith('b-'))).toBe(true);
  });

  it.each([
    [{ group: 'posts', errorRate: 2 }, 'errorRate must be a number between 0 and 1'],
    [{ group: 'posts', latencyMs: -1 }, 'latencyMs must be an integer between 0 and 600000'],
    [{ group: 'posts', latencyMs: '10' }, 'latencyMs must be an integer'],
    [{ group: 'posts', errorStatus: 200 }, 'errorStatus must be an integer between 400 and 599'],
    [{ group: 'posts', retryAfterS: 1.5 }, 'retryAfterS must be an integer'],
    [{ group: 'posts', outage: 'yes' }, 'outage must be true or false'],
    [{ group: 'posts', tailRate: 1.5 }, 'tailRate must be a number between 0 and 1'],
    [{ group: 'posts', tailRate: '0.1' }, 'tailRate must be a number between 0 and 1'],
    [{ group: 'posts', tailLatencyMs: 600_001 }, 'tailLatencyMs must be an integer between 0 and 600000'],
    [{ group: 'posts', capacity: 2.5 }, 'capacity must be an integer between 0 and 100000'],
    [{ group: 'posts', capacity: -1 }, 'capacity must be an integer between 0 and 100000'],
    [{ group: 'posts', capacity: 100_001 }, 'capacity must be an integer between 0 and 100000'],
    [{ group: 'users', latencyMs: 1 }, 'group must be'],
    [{ latencyMs: 1 }, 'group must be'],
    [{ group: 'posts', latency: 1 }, 'unknown key "latency"'],
    [[1, 2], 'body must be a JSON object'],
  ])('rejects %j with 400 and leaves the knobs alone', async (body, message) => {
    const res = await fetch(`${sim.url}/__admin/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toContain(message);
    const { knobs } = await client.state();
    expect(knobs.posts).toEqual(knobs.comments);
    expect(knobs.posts).toMatchObject({ latencyMs: 0, tailRate: 0, tailLatencyMs: 0, capacity: 0 });
  });

  it('surfaces a rejected knob as an Error from the client', async () => {
    await expect(client.setFaults('posts', { errorRate: -0.1 })).rejects.toThrow(
      'simulator PUT /__admin/faults answered 400: errorRate must be a number between 0 and 1',
    );
  });

  it('merges knobs, and reset restores defaults and clears stats and ids', async () => {
    await client.setFaults('all', { latencyMs: 10, retryAfterS: 5 });
    const merged = await client.setFaults('posts', { errorStatus: 500 });
    expect(merged.knobs.posts).toMatchObject({ latencyMs: 10, retryAfterS: 5, errorStatus: 500 });
    expect(merged.knobs.comments).toMatchObject({ latencyMs: 10, retryAfterS: 5, errorStatus: 503 });
    expect((await client.setFaults('posts', { retryAfterS: null })).knobs.posts.retryAfterS).toBeNull();
    await get('/users/1/posts', { headers: { 'x-request-id': 'r-1' } });

    const after = await client.reset();
    const defaults = {
      latencyMs: 0,
      tailRate: 0,
      tailLatencyMs: 0,
      jitterMs: 0,
      errorRate: 0,
      errorStatus: 503,
      retryAfterS: null,
      outage: false,
      reset: false,
      slowDripMs: 0,
      capacity: 0,
      seed: 7,
    };
    expect(after.knobs).toEqual({ posts: defaults, comments: defaults });
    const zero = {
      requests: 0,
      inFlight: 0,
      maxInFlight: 0,
      queued: 0,
      maxQueued: 0,
      errors: 0,
      resets: 0,
      deadlineCutoffs: 0,
    };
    expect(after.stats).toEqual({ posts: zero, comments: zero });
    expect(after.requestIds).toEqual([]);
  });
});

describe('loadUpstreamConfig', () => {
  it('defaults to 127.0.0.1:4010 and treats empty values as unset', () => {
    expect(loadUpstreamConfig({})).toEqual({ host: '127.0.0.1', port: 4010 });
    expect(loadUpstreamConfig({ UPSTREAM_HOST: '', UPSTREAM_PORT: '' })).toEqual({ host: '127.0.0.1', port: 4010 });
    expect(loadUpstreamConfig({ UPSTREAM_HOST: '0.0.0.0', UPSTREAM_PORT: '0' })).toEqual({ host: '0.0.0.0', port: 0 });
  });

  it.each(['x', '70000', '-1', '80.5'])('rejects UPSTREAM_PORT=%s in one line', (value) => {
    const call = () => loadUpstreamConfig({ UPSTREAM_PORT: value });
    expect(call).toThrow(ConfigError);
    expect(call).toThrow(
      `Invalid configuration: UPSTREAM_PORT must be an integer between 0 and 65535 (got ${JSON.stringify(value)})`,
    );
  });
});

describe('npm run upstream (the built entry as its own process)', () => {
  const MAIN = fileURLToPath(new URL('../../dist/upstream/simulator.main.js', import.meta.url));

  async function freePort(): Promise<number> {
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
    // Jest's --experimental-vm-modules would only add a warning to the child's stderr.
    delete env['NODE_OPTIONS'];
    return env;
  }

  it('listens on UPSTREAM_PORT, logs its URL, and exits 0 on SIGTERM', async () => {
    expect(existsSync(MAIN)).toBe(true);
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: childEnv({ UPSTREAM_PORT: String(port) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const log = JSON.parse(line.toString('utf8').trim());
      expect(log).toMatchObject({ msg: 'upstream simulator listening', url: `http://127.0.0.1:${String(port)}` });

      const res = await fetch(`${String(log.url)}/users/9/posts`);
      expect(res.status).toBe(200);
      expect((await json(res))[0]).toMatchObject({ userId: 9, id: 901 });
      expect((await new SimulatorClient(log.url).state()).stats.posts.requests).toBe(1);
    } finally {
      child.kill('SIGTERM');
    }
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });

  it('exits 1 with one line on a bad UPSTREAM_PORT', async () => {
    const child = spawn(process.execPath, [MAIN], { env: childEnv({ UPSTREAM_PORT: 'x' }), stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const [code] = await once(child, 'close');
    expect(code).toBe(1);
    expect(stderr).toBe('Invalid configuration: UPSTREAM_PORT must be an integer between 0 and 65535 (got "x")\n');
  });
});
