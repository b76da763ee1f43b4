// Child process of bench/connections.bench.mjs (pinned to core 1 with the other
// load generators): holds its share of the connections, SSE subscribers on
// /events?types=user.created (bare TCP sockets that only look for each event's user id) or
// WebSocket clients (the `ws` package) joined to one chat room, and reports over
// IPC. Several of these run at once, each far below the open-file cap.
//
// Commands from the parent (each answered with a message carrying its `id`):
//   { cmd: 'open', count, deadline, concurrency }  open `count` more (at most
//       `concurrency` at once, until `deadline`, epoch ms): { opened, failed,
//       errors, timedOut, started, finished, open, shed, joinRetries }
//   { cmd: 'status' }  { open, lastFrameAt, dropped, dropReason, errorFrames }
//   { cmd: 'flush', key }  the receipts of `key` so far: { times } (and no more of them)
//   { cmd: 'close' }  every connection closed, then this process exits.
// Unasked: { ev: 'receipts', key, times } once every open connection of this
// child has received the publish `key` (the user id of a user.created event, the
// id of a chat message), with each receipt's time. Connections the server ends
// are counted (`dropped` in the status).
//
// Times are epoch milliseconds with a fraction (performance.timeOrigin +
// performance.now()), comparable across the processes of the machine. Every
// frame but the ones timed (and `history`, which completes a join, and `error`)
// is skipped unparsed: presence, welcome, who, heartbeats.
//
//   node bench/lib/connections.child.mjs '{"kind":"ws","base":"http://127.0.0.1:3000","room":"scale"}'
/* global clearTimeout, performance, setTimeout */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { openMarkedStream, StreamRefused } from './sse-client.mjs';

const { kind, base, room } = JSON.parse(process.argv[2]);
const now = () => performance.timeOrigin + performance.now();

/** Open connections, each `{ close }`. */
const open = new Set();
let closing = false;
let lastFrameAt = 0;
let dropped = 0;
let dropReason;
let errorFrames = 0;
let joinRetries = 0;
let shed = 0;
/** Receipts by publish key, until every connection has one. */
const receipts = new Map();
/** Keys handed over by a flush: late receipts of theirs are not collected again. */
const flushed = new Set();

function receipt(key, at) {
  if (flushed.has(key)) return;
  let times = receipts.get(key);
  if (times === undefined) {
    times = [];
    receipts.set(key, times);
  }
  times.push(at);
  if (times.length >= open.size) {
    receipts.delete(key);
    process.send({ ev: 'receipts', key, times });
  }
}

/** A connection that ends while not asked to: counted, with the first one's reason. */
function gone(conn, reason) {
  if (closing || !open.delete(conn)) return;
  dropped++;
  dropReason ??= reason;
}

// ---- SSE ----------------------------------------------------------------------------
async function openSse() {
  let conn;
  // Only user.created events are asked for, and only they carry "userId": the marker is the event.
  conn = await openMarkedStream(`${base}/events?types=user.created`, {
    marker: '"userId":',
    onMatch: (id, at) => receipt(id, at),
    onData: (at) => {
      lastFrameAt = at;
    },
    onEnd: () => gone(conn, 'the server ended an event stream'),
  });
  return conn;
}

// ---- WebSocket --------------------------------------------------------------------------
const PREFIX = '{"type":"';

/** The frame's type, read from its first bytes where the server puts it (parsed only otherwise). */
function typeOf(data) {
  const head = data.toString('latin1', 0, 24);
  if (!head.startsWith(PREFIX)) {
    try {
      return JSON.parse(data.toString('utf8')).type;
    } catch {
      return undefined;
    }
  }
  return head.slice(PREFIX.length, head.indexOf('"', PREFIX.length));
}

function openWs() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { perMessageDeflate: false });
    const conn = { close: () => ws.terminate() };
    let joined = false;
    const join = () => ws.send(JSON.stringify({ type: 'join', room }));
    ws.once('open', join);
    ws.on('message', (data) => {
      const at = now();
      lastFrameAt = at;
      const type = typeOf(data);
      if (type === 'message') {
        receipt(JSON.parse(data.toString('utf8')).id, at);
      } else if (type === 'history') {
        if (!joined) {
          joined = true;
          resolve(conn);
        }
      } else if (type === 'error') {
        errorFrames++;
        const frame = JSON.parse(data.toString('utf8'));
        // `unavailable` asks to try again: a join storm can outrun the history reads.
        if (!joined && frame.code === 'unavailable') {
          joinRetries++;
          setTimeout(join, 200);
        } else if (!joined) {
          reject(new Error(`join refused: ${frame.code} (${frame.message})`));
          ws.terminate();
        }
      }
    });
    ws.on('error', (error) => {
      if (!joined) reject(error);
    });
    ws.once('close', (code, reason) => {
      const why = `closed by the server (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`;
      if (joined) gone(conn, why);
      else reject(new Error(`${why} before joining`));
    });
  });
}

// ---- commands ----------------------------------------------------------------------------
const openOne = kind === 'sse' ? openSse : openWs;

async function openMore({ count, deadline, concurrency }) {
  const started = now();
  let finished = started;
  let opened = 0;
  let failed = 0;
  let timedOut = false;
  const errors = [];
  let left = count;
  // One timer for the whole increment: an open still pending at the deadline is abandoned (and closed if it ever opens).
  let late;
  const pastDeadline = new Promise((resolve) => {
    late = setTimeout(resolve, Math.max(0, deadline - now()), 'late');
  });
  const worker = async () => {
    while (left > 0 && failed === 0 && !timedOut) {
      left--;
      const attempt = openOne();
      const outcome = await Promise.race([attempt, pastDeadline]).catch((error) => error);
      if (outcome === 'late') {
        timedOut = true;
        attempt.then((c) => c.close()).catch(() => {});
      } else if (outcome instanceof StreamRefused && outcome.status === 503) {
        // Load shedding: tried again after its Retry-After.
        shed++;
        left++;
        await sleep((outcome.retryAfterS || 1) * 1000);
      } else if (outcome instanceof Error) {
        failed++;
        if (errors.length < 3) errors.push(outcome.message);
      } else {
        open.add(outcome);
        opened++;
        finished = now();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  clearTimeout(late);
  return { opened, failed, errors, timedOut, started, finished, open: open.size, shed, joinRetries };
}

process.on('message', async (msg) => {
  let reply;
  if (msg.cmd === 'open') {
    reply = await openMore(msg);
  } else if (msg.cmd === 'status') {
    reply = { open: open.size, lastFrameAt, dropped, dropReason, errorFrames, joinRetries, shed };
  } else if (msg.cmd === 'flush') {
    reply = { times: receipts.get(msg.key) ?? [] };
    receipts.delete(msg.key);
    flushed.add(msg.key);
  } else if (msg.cmd === 'close') {
    closing = true;
    for (const conn of open) conn.close();
    open.clear();
    process.send({ id: msg.id }, () => process.exit(0));
    return;
  }
  process.send({ id: msg.id, ...reply });
});
process.send({ ev: 'ready' });
