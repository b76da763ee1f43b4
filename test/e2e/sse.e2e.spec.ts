import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { DomainEvents } from '../../src/common/events/domain-events.js';
import { EventHub } from '../../src/stream/event-hub.js';
import { subscribe } from '../support/sse-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { ADMIN, adminJson, bearer } from '../support/tokens.js';

/** Reads a raw SSE response until `marker` appears (or fails after a bound). */
async function readUntil(url: string, marker: string, headers: Record<string, string> = {}): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5000);
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes(marker)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    return text;
  } finally {
    clearTimeout(timer);
  }
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const metric = async (t: TestApp, name: string): Promise<number> => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m?.[1] === undefined ? Number.NaN : Number(m[1]);
};

async function createUser(t: TestApp, n: number): Promise<number> {
  const res = await fetch(`${t.url}/users`, {
    method: 'POST',
    headers: adminJson,
    body: JSON.stringify({ name: `Sse ${String(n)}`, email: `sse-${String(n)}-${String(Date.now())}@example.org` }),
  });
  return ((await res.json()) as { id: number }).id;
}

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ EVENTS_HEARTBEAT_MS: '100' });
});
afterAll(async () => {
  await t.close();
});

describe('GET /stream', () => {
  it('sends count items with ids, then ends the stream cleanly', async () => {
    const res = await fetch(`${t.url}/stream?count=5&intervalMs=5`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const text = await res.text();
    const events = text.trim().split('\n\n');
    expect(events).toEqual(
      Array.from(
        { length: 5 },
        (_, i) => `id: ${String(i)}\ndata: ${JSON.stringify({ item: i, value: `data_${String(i)}` })}`,
      ),
    );
  });

  it('delivers the items to an EventSource client', async () => {
    const { source, received, opened } = subscribe(`${t.url}/stream?count=20&intervalMs=0`, []);
    await opened;
    await until(() => received.length >= 20);
    source.close();
    expect(received.slice(0, 20).map((r) => r.data.item)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(received[3]).toEqual({ type: 'message', id: '3', data: { item: 3, value: 'data_3' } });
  });

  it.each(['count=0', 'count=10001', 'intervalMs=-1', 'intervalMs=10001', 'count=abc', 'other=1'])(
    'rejects %s with 400',
    async (query) => {
      const res = await fetch(`${t.url}/stream?${query}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    },
  );
});

describe('GET /events', () => {
  it('streams domain events live with id, event type and JSON data, after a retry hint', async () => {
    const raw = await fetch(`${t.url}/events`);
    const reader = raw.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first.startsWith('retry: 3000\n\n')).toBe(true);
    // The keep-alive comment arrives on an idle stream.
    let text = first;
    while (!text.includes(': keepalive')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();

    const { source, received, opened } = subscribe(`${t.url}/events`, ['user.created', 'user.deleted']);
    await opened;
    const id = await createUser(t, 1);
    await fetch(`${t.url}/users/${String(id)}`, { method: 'DELETE', headers: bearer(ADMIN) });
    await until(() => received.length >= 2);
    source.close();
    expect(received.map((r) => [r.type, r.data.userId])).toEqual([
      ['user.created', id],
      ['user.deleted', id],
    ]);
    expect(Number(received[1]!.id)).toBe(Number(received[0]!.id) + 1);
    expect(typeof received[0]!.data.ts).toBe('string');
  });

  it('frames one shared chunk per event for HTTP/1.1 and sends HTTP/1.0 clients the bare stream', async () => {
    const url = new URL(t.url);
    const rawStream = async (version: '1.0' | '1.1', until: (text: string) => boolean) => {
      const socket = connect(Number(url.port), url.hostname);
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
      });
      socket.write(`GET /events?types=user.created HTTP/${version}\r\nHost: ${url.host}\r\n\r\n`);
      const deadline = Date.now() + 5000;
      while (!text.includes('retry: 3000') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return {
        text: () => text,
        wait: async () => {
          while (!until(text) && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 10));
          socket.destroy();
          return text;
        },
      };
    };
    const v11 = await rawStream('1.1', (x) => x.includes('event: user.created'));
    const v10 = await rawStream('1.0', (x) => x.includes('event: user.created'));
    const id = await createUser(t, 5);
    const [text11, text10] = [await v11.wait(), await v10.wait()];
    const body11 = text11.slice(text11.indexOf('\r\n\r\n') + 4);
    expect(text11).toMatch(/transfer-encoding: chunked/i);
    // Each piece is one chunk: its length in hex, CRLF, the bytes, CRLF.
    const event = `id: `;
    const at = body11.indexOf(event);
    const sizeLine = body11.slice(body11.lastIndexOf('\r\n', at - 3) + 2, at - 2);
    const payload = body11.slice(at, at + parseInt(sizeLine, 16));
    expect(payload).toMatch(
      new RegExp(`^id: \\d+\\nevent: user.created\\ndata: \\{"userId":${String(id)},.*\\}\\n\\n$`),
    );
    expect(body11.slice(at + payload.length, at + payload.length + 2)).toBe('\r\n');
    const body10 = text10.slice(text10.indexOf('\r\n\r\n') + 4);
    expect(text10).not.toMatch(/transfer-encoding/i);
    expect(body10.startsWith('retry: 3000\n\n')).toBe(true);
    expect(body10).toContain(`event: user.created\ndata: {"userId":${String(id)},`);
  });

  it('filters by ?types=', async () => {
    const { source, received, opened } = subscribe(`${t.url}/events?types=user.deleted`, [
      'user.created',
      'user.deleted',
    ]);
    await opened;
    const id = await createUser(t, 2);
    await fetch(`${t.url}/users/${String(id)}`, { method: 'DELETE', headers: bearer(ADMIN) });
    await until(() => received.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    source.close();
    expect(received.map((r) => r.type)).toEqual(['user.deleted']);
    expect((await fetch(`${t.url}/events?types=nope`)).status).toBe(400);
  });

  it('resumes after Last-Event-ID with exactly the missed events, then live ones', async () => {
    const first = subscribe(`${t.url}/events?types=user.created`, ['user.created']);
    await first.opened;
    await createUser(t, 3);
    await until(() => first.received.length >= 1);
    first.source.close();
    const lastSeen = first.received[0]!.id;

    const missed = [await createUser(t, 4), await createUser(t, 5), await createUser(t, 6)];
    const resumed = subscribe(`${t.url}/events?types=user.created`, ['user.created'], lastSeen);
    await resumed.opened;
    const live = await createUser(t, 7);
    await until(() => resumed.received.length >= 4);
    resumed.source.close();
    expect(resumed.received.map((r) => r.data.userId)).toEqual([...missed, live]);
    const ids = resumed.received.map((r) => Number(r.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toBeGreaterThan(Number(lastSeen));
    expect(await metric(t, 'sse_replayed_events_total')).toBeGreaterThanOrEqual(3);
  });

  it('tells a client whose Last-Event-ID is older than the buffer to reset', async () => {
    const small = await startTestApp({ EVENTS_REPLAY_SIZE: '3' });
    try {
      for (let i = 0; i < 6; i++) await createUser(small, 100 + i);
      // Ids 1..6 were published; the buffer keeps 4..6, so resuming after 1 would leave a gap.
      const text = await readUntil(`${small.url}/events`, 'event: reset', { 'last-event-id': '1' });
      expect(text).toMatch(/event: reset\ndata: \{"reason":"[^"]+","oldestId":"4"\}/);
      // Resuming after 3 is exactly the buffer: no reset, events 4..6.
      const ok = await readUntil(`${small.url}/events`, 'id: 6', { 'last-event-id': '3' });
      expect(ok).not.toContain('event: reset');
      expect([...ok.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([4, 5, 6]);
    } finally {
      await small.close();
    }
  });
});

describe('backpressure and cleanup', () => {
  it('drops a client that does not read instead of buffering without bound', async () => {
    // In-process events (no Redis round trip per event) make the flood fast enough to overrun the socket.
    const slow = await startTestApp({ SSE_MAX_BUFFER_BYTES: '1024', REDIS_URL: '' });
    try {
      const url = new URL(slow.url);
      const socket = connect(Number(url.port), url.hostname);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(`GET /events HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
      // Read the head, then stop reading: the kernel buffers fill and the server's send buffer grows.
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.pause();
      await until(() => slow.app.get(EventHub).subscribers === 1);
      const events = slow.app.get(DomainEvents);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      for (let i = 0; i < 200_000 && slow.app.get(EventHub).subscribers > 0; i++) {
        events.publish('user.updated', { userId: i });
        if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => slow.app.get(EventHub).subscribers === 0, 10_000);
      socket.resume();
      await closed;
      expect(await metric(slow, 'sse_dropped_clients_total')).toBe(1);
      expect(await metric(slow, 'sse_subscribers')).toBe(0);
    } finally {
      await slow.close();
    }
  });

  it('releases every listener and timer when thousands of clients connect and vanish', async () => {
    const hub = t.app.get(EventHub);
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const url = new URL(`${t.url}/events`);
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from(
          { length: 100 },
          () =>
            new Promise<void>((resolve) => {
              const req = httpRequest(url, { agent: false }, (res) => {
                res.once('data', () => {
                  req.destroy();
                  resolve();
                });
              });
              req.on('error', () => resolve());
              req.end();
            }),
        ),
      );
    }
    await until(() => hub.subscribers === 0, 10_000);
    expect(await metric(t, 'sse_subscribers')).toBe(0);
    const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(timersAfter - timersBefore).toBeLessThan(20);
  });
});
