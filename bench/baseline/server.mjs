// The no-framework baseline of `npm run bench`: node:http, a pg Pool and
// undici, doing the same work as the service on the benchmarked routes with
// the same SQL (the users repository's statements, as the service sends them), the
// same upstream calls (two keep-alive pools of UPSTREAM_MAX_SOCKETS, the same
// headers and deadline) and the same pool size (DB_POOL_SIZE). No validation
// library, no DI, no guards, metrics or logs: what is left is the floor the
// framework and the shipped cross-cutting features are measured against.
//
// For `bench/connections.bench.mjs` it also serves GET /events (text/event-stream:
// every successful POST /users is a `user.created` event, encoded once, written
// to every subscriber; one whose socket buffers more than SSE_MAX_BUFFER_BYTES
// is dropped) and WebSocket /ws (the `ws` package, no compression: welcome, join
// with the room's last 50 messages from chat_messages, message stored with the
// service's INSERT then broadcast as one buffer, ack to the sender). No auth: a
// token is ignored, every connection is a guest that may post. GET /metrics gives
// the event-loop delay since the previous scrape in prom-client's names.
//
//   PORT=3001 DATABASE_URL=postgres://... POSTS_SERVICE_URL=http://127.0.0.1:4010 \
//   COMMENTS_SERVICE_URL=http://127.0.0.1:4010 PROFILE_CACHE_TTL_MS=0 node bench/baseline/server.mjs
/* global AbortController, clearTimeout, performance, setTimeout */
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { Pool as UndiciPool } from 'undici';
import { WebSocketServer } from 'ws';

const env = process.env;
const port = Number(env.PORT ?? 3001);
const poolSize = Number(env.DB_POOL_SIZE ?? 10);
const maxSockets = Number(env.UPSTREAM_MAX_SOCKETS ?? 64);
const deadlineMs = Number(env.PROFILE_DEADLINE_MS ?? 2000);
const cacheTtlMs = Number(env.PROFILE_CACHE_TTL_MS ?? 30000);
const idleTimeoutMs = Number(env.DB_IDLE_TIMEOUT_MS ?? 30000);
const connectTimeoutMs = Number(env.DB_CONNECT_TIMEOUT_MS ?? 5000);
const maxBufferBytes = Number(env.SSE_MAX_BUFFER_BYTES ?? 1024 * 1024);

const db = new pg.Pool({
  connectionString: env.DATABASE_URL,
  max: poolSize,
  idleTimeoutMillis: idleTimeoutMs,
  connectionTimeoutMillis: connectTimeoutMs,
});

// The service's statements, verbatim: its repository's fixed read and fixed insert.
const SELECT_USER = 'SELECT id, name, email, created_at, updated_at FROM users WHERE id = $1';
const INSERT_USER = 'INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, name, email, created_at, updated_at';

const userDto = (id, name, email, createdAt, updatedAt) => ({
  id,
  name,
  email,
  createdAt: new Date(createdAt).toISOString(),
  updatedAt: new Date(updatedAt).toISOString(),
});

const NAMED = env.BASELINE_NAMED_STATEMENTS === 'true';
async function findUser(id) {
  const { rows } = await db.query(
    NAMED ? { name: 'users_find_by_id', text: SELECT_USER, values: [id] } : { text: SELECT_USER, values: [id] },
  );
  const r = rows[0];
  return r === undefined ? undefined : userDto(r.id, r.name, r.email, r.created_at, r.updated_at);
}

// One keep-alive pool per upstream, like the service's one agent per upstream.
const upstream = (base) => {
  const url = new URL(base.endsWith('/') ? base : `${base}/`);
  return { url, pool: new UndiciPool(url.origin, { connections: maxSockets, pipelining: 1 }) };
};
const posts = upstream(env.POSTS_SERVICE_URL ?? 'http://127.0.0.1:4010');
const comments = upstream(env.COMMENTS_SERVICE_URL ?? 'http://127.0.0.1:4010');

async function getArray(up, path, requestId, deadlineAt, signal) {
  const res = await up.pool.request({
    method: 'GET',
    path: new URL(path, up.url).pathname,
    headers: {
      accept: 'application/json',
      'x-deadline-ms': String(Math.max(0, Math.round(deadlineAt - Date.now()))),
      'x-request-id': requestId,
    },
    signal,
  });
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump();
    throw new Error(`upstream ${res.statusCode}`);
  }
  const body = await res.body.json();
  if (!Array.isArray(body)) throw new Error('not an array');
  return body;
}

const cache = new Map();
const inFlight = new Map();
const etagOf = (body) => `"${createHash('sha1').update(JSON.stringify(body)).digest('base64url')}"`;

async function assemble(userId, requestId) {
  const controller = new AbortController();
  const deadlineAt = Date.now() + deadlineMs;
  const timer = setTimeout(() => controller.abort(new Error('deadline')), deadlineMs);
  try {
    const settle = (p) =>
      p.then(
        (value) => ({ ok: true, value }),
        (error) => ({ ok: false, error }),
      );
    const [u, p, c] = await Promise.all([
      settle(findUser(userId)),
      settle(getArray(posts, `users/${userId}/posts`, requestId, deadlineAt, controller.signal)),
      settle(getArray(comments, `users/${userId}/comments`, requestId, deadlineAt, controller.signal)),
    ]);
    if (!u.ok) throw u.error;
    if (u.value === undefined) return undefined;
    const degraded = [];
    if (!p.ok) degraded.push('posts');
    if (!c.ok) degraded.push('comments');
    return { user: u.value, posts: p.ok ? p.value : [], comments: c.ok ? c.value : [], degraded };
  } finally {
    clearTimeout(timer);
  }
}

async function profile(userId, requestId) {
  if (cacheTtlMs > 0) {
    const hit = cache.get(userId);
    if (hit !== undefined && Date.now() - hit.storedAt < cacheTtlMs) {
      return { profile: { ...hit.profile, degraded: [] }, cache: 'HIT', etag: hit.etag };
    }
  }
  let round = inFlight.get(userId);
  if (round === undefined) {
    round = assemble(userId, requestId)
      .then((fresh) => {
        if (fresh !== undefined && cacheTtlMs > 0 && fresh.degraded.length === 0) {
          const { user, posts: ps, comments: cs } = fresh;
          cache.set(userId, { profile: { user, posts: ps, comments: cs }, etag: etagOf(fresh), storedAt: Date.now() });
        }
        return fresh;
      })
      .finally(() => inFlight.delete(userId));
    inFlight.set(userId, round);
  }
  const fresh = await round;
  return fresh === undefined ? undefined : { profile: fresh, cache: 'MISS', etag: etagOf(fresh) };
}

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
let lastCpu = process.cpuUsage();
let lastCpuAt = performance.now();
const toMs = (ns) => Math.round((ns / 1e6) * 100) / 100;

function health() {
  const memory = process.memoryUsage();
  const now = performance.now();
  const cpu = process.cpuUsage(lastCpu);
  const elapsedMs = Math.max(now - lastCpuAt, 1);
  lastCpu = process.cpuUsage();
  lastCpuAt = now;
  const details = {
    process: {
      status: 'up',
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime()),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal },
      cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 1000) / 10,
      eventLoopDelayMs:
        delay.count === 0
          ? { p50: 0, p99: 0, max: 0 }
          : { p50: toMs(delay.percentile(50)), p99: toMs(delay.percentile(99)), max: toMs(delay.max) },
    },
  };
  delay.reset();
  return { status: 'ok', info: details, error: {}, details };
}

// ---- GET /events ------------------------------------------------------------------------
const subscribers = new Set();
let eventSeq = 0;

function subscribe(res) {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write('retry: 3000\n\n');
  subscribers.add(res);
  res.once('close', () => subscribers.delete(res));
}

/** One event, encoded once, to every subscriber; one that has fallen more than maxBufferBytes behind is dropped. */
function publish(type, data) {
  const chunk = Buffer.from(`id: ${++eventSeq}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  for (const res of subscribers) {
    if (res.socket === null || res.socket.writableLength > maxBufferBytes) {
      subscribers.delete(res);
      res.destroy();
    } else res.write(chunk);
  }
}

// ---- WebSocket /ws -----------------------------------------------------------------------
const SELECT_HISTORY =
  'SELECT id, room, author, guest, text, created_at FROM chat_messages WHERE room = $1 ORDER BY id DESC LIMIT 50';
const INSERT_MESSAGE =
  'INSERT INTO chat_messages (room, author, author_key, guest, text, client_msg_id) VALUES ($1, $2, $3, $4, $5, $6) ' +
  'ON CONFLICT DO NOTHING RETURNING id, room, author, guest, text, created_at';
const SELECT_RESENT =
  'SELECT id, room, author, guest, text, created_at FROM chat_messages ' +
  'WHERE room = $1 AND guest = $2 AND author_key = $3 AND client_msg_id = $4';
const toMessage = (r) => ({
  id: Number(r.id),
  room: r.room,
  author: r.author,
  guest: r.guest,
  text: r.text,
  ts: new Date(r.created_at).toISOString(),
});
/** Members by room name. */
const rooms = new Map();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });

function sendFrame(ws, frame) {
  if (ws.bufferedAmount > maxBufferBytes) ws.terminate();
  else ws.send(frame, { binary: false });
}

async function onFrame(ws, me, data) {
  const frame = JSON.parse(data.toString('utf8'));
  const room = typeof frame?.room === 'string' && frame.room.length <= 64 ? frame.room : undefined;
  if (room === undefined) return sendFrame(ws, JSON.stringify({ type: 'error', code: 'bad_frame', message: 'room' }));
  if (frame.type === 'join') {
    const { rows } = await db.query(SELECT_HISTORY, [room]);
    sendFrame(ws, JSON.stringify({ type: 'history', room, messages: rows.reverse().map(toMessage) }));
    let members = rooms.get(room);
    if (members === undefined) rooms.set(room, (members = new Set()));
    members.add(ws);
    me.rooms.add(room);
  } else if (frame.type === 'message' && typeof frame.text === 'string' && me.rooms.has(room)) {
    const clientMsgId = typeof frame.clientMsgId === 'string' ? frame.clientMsgId : null;
    const values = [room, me.name, me.name, true, frame.text, clientMsgId];
    let [row] = (await db.query(INSERT_MESSAGE, values)).rows;
    const created = row !== undefined;
    if (!created) [row] = (await db.query(SELECT_RESENT, [room, true, me.name, clientMsgId])).rows;
    const message = toMessage(row);
    if (created) {
      const out = Buffer.from(JSON.stringify({ type: 'message', ...message }));
      for (const member of rooms.get(room) ?? []) sendFrame(member, out);
    }
    if (clientMsgId !== null) sendFrame(ws, JSON.stringify({ type: 'ack', clientMsgId, id: message.id }));
  }
}

wss.on('connection', (ws) => {
  const me = { name: `guest-${randomUUID().slice(0, 6)}`, rooms: new Set() };
  ws.send(JSON.stringify({ type: 'welcome', name: me.name, guest: true, canPost: true }));
  ws.on('message', (data) =>
    onFrame(ws, me, data).catch(() =>
      sendFrame(ws, JSON.stringify({ type: 'error', code: 'internal', message: 'failed' })),
    ),
  );
  ws.once('close', () => {
    for (const room of me.rooms) rooms.get(room)?.delete(ws);
  });
});

// ---- GET /metrics: the event-loop delay since the previous scrape ------------------------
const scrapedDelay = monitorEventLoopDelay({ resolution: 10 });
scrapedDelay.enable();
function metrics() {
  const s = (ns) => ns / 1e9;
  const text =
    `nodejs_eventloop_lag_p99_seconds ${s(scrapedDelay.percentile(99))}\n` +
    `nodejs_eventloop_lag_max_seconds ${s(scrapedDelay.max)}\n`;
  scrapedDelay.reset();
  return text;
}

const ID = /^\d{1,10}$/;
const parseId = (s) => {
  const id = ID.test(s) ? Number(s) : NaN;
  return id >= 1 && id <= 2_147_483_647 ? id : undefined;
};
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1_048_576) reject(new Error('too large'));
      else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

async function handle(req, res) {
  const requestId = randomUUID();
  const headers = { 'x-request-id': requestId };
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (req.method === 'GET' && (path === '/health' || path === '/ready')) {
    if (path === '/ready') await db.query('SELECT 1');
    return send(res, 200, health(), { ...headers, 'cache-control': 'no-store' });
  }
  if (req.method === 'GET' && path === '/events') return subscribe(res);
  if (req.method === 'GET' && path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    return res.end(metrics());
  }
  if (req.method === 'GET' && path.startsWith('/users/')) {
    const id = parseId(path.slice(7));
    if (id === undefined) return send(res, 400, { code: 'validation_failed' }, headers);
    const user = await findUser(id);
    return user === undefined ? send(res, 404, { code: 'user_not_found' }, headers) : send(res, 200, user, headers);
  }
  if (req.method === 'POST' && path === '/users') {
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, {}, headers);
    const body = await readJson(req);
    const name = typeof body?.name === 'string' ? body.name.trim() : '';
    const email = typeof body?.email === 'string' ? body.email.trim() : '';
    if (name.length < 1 || name.length > 100 || email.length > 254 || !EMAIL.test(email)) {
      return send(res, 400, { code: 'validation_failed' }, headers);
    }
    try {
      const { rows } = await db.query(INSERT_USER, [name, email]);
      const r = rows[0];
      publish('user.created', { userId: r.id, ts: new Date().toISOString() });
      return send(res, 201, userDto(r.id, r.name, r.email, r.created_at, r.updated_at), headers);
    } catch (error) {
      if (error?.code === '23505') return send(res, 409, { code: 'email_taken' }, headers);
      throw error;
    }
  }
  if (req.method === 'GET' && path.startsWith('/profiles/')) {
    const id = parseId(path.slice(10));
    if (id === undefined) return send(res, 400, { code: 'validation_failed' }, headers);
    const result = await profile(id, requestId);
    if (result === undefined) return send(res, 404, { code: 'user_not_found' }, headers);
    const extra = { ...headers, 'x-cache': result.cache, etag: result.etag, 'cache-control': 'private, no-cache' };
    if (result.profile.degraded.length > 0) extra['x-degraded'] = result.profile.degraded.join(', ');
    if (req.headers['if-none-match'] === result.etag) return send(res, 304, undefined, extra);
    return send(res, 200, result.profile, extra);
  }
  return send(res, 404, { code: 'not_found' }, headers);
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) send(res, 500, { code: 'internal_error' });
    else res.destroy();
  });
});
server.keepAliveTimeout = 72_000;
server.on('upgrade', (req, socket, head) => {
  if ((req.url ?? '').split('?')[0] !== '/ws') socket.destroy();
  else wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(port, env.HOST ?? '127.0.0.1');

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  for (const ws of wss.clients) ws.terminate();
  void Promise.allSettled([db.end(), posts.pool.close(), comments.pool.close()]).then(() => process.exit(0));
});
