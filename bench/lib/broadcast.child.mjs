// Child process of the benchmark (pinned to core 1): N subscribers on the
// service's /events (SSE) or N WebSocket clients in one chat room, then
// messages published one at a time; for each, the delay from publish to every
// receipt. Prints one JSON line.
//
// SSE: a publish is POST /users (the service emits user.created to /events
// once the insert is done, before it answers). The publish moment is taken as
// the earlier of the POST's response and the first receipt, so the delay is
// the fan-out (and its queueing), not the insert or the POST's own handling.
// WS: a publish is one chat message from client 0; the clock starts at send,
// so it includes the message's insert before the broadcast.
// Messages are serial (the next one only once every client has the previous
// one, or after a timeout), so each receipt belongs to the current publish.
//
// Scale mode: grows N through `steps`, measuring at each, and reads the
// server's RSS from /proc/<serverPid>/status before connecting and at each
// step; stops at the first step whose delivery p99 (over every message and
// client) passes `maxP99Ms`, or at `budgetS`. (bench/run.mjs runs one step, the
// delivery scenario; the connection-scale bench is bench/connections.bench.mjs.)
//
//   node bench/lib/broadcast.child.mjs '{"mode":"ws","base":"http://127.0.0.1:3000","steps":[100],"messages":20,"serverPid":123}'
/* global clearTimeout, fetch, performance, setTimeout */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { openEventStream } from './sse-client.mjs';

const spec = JSON.parse(process.argv[2]);
const {
  mode,
  base,
  steps,
  messages = 20,
  intervalMs = 120,
  maxP99Ms = Infinity,
  budgetS = 120,
  serverPid,
  receiptTimeoutMs = 5000,
  // The Authorization header of the SSE publishes (POST /users needs users:write).
  authorization,
} = spec;
const started = Date.now();
const token = Math.random().toString(36).slice(2, 10);

const rssOf = (pid) => {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
  } catch {
    return NaN;
  }
};

const clients = [];
let current = { seq: -1, sentAt: 0, pending: 0, receipts: [], done: () => {} };
let connectErrors = 0;
let lastFrameAt = performance.now();

function received(seq) {
  lastFrameAt = performance.now();
  if (seq !== current.seq) return;
  current.receipts.push(performance.now());
  current.pending--;
  if (current.pending === 0) current.done();
}

// ---- SSE ----------------------------------------------------------------------
function openSse() {
  return openEventStream(`${base}/events?types=user.created`, {
    onEvent: (block) => {
      if (block.includes('event: user.created')) received(current.seq);
    },
  });
}

async function publishSse(seq) {
  const res = await fetch(`${base}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify({ name: `Broadcast ${seq}`, email: `bcast.${token}.${seq}@example.org` }),
  });
  const answeredAt = performance.now();
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`POST /users answered ${res.status}`);
  return answeredAt;
}

// ---- WebSocket ------------------------------------------------------------------
let joinRetries = 0;
let errorFrames = 0;

function openWs(index) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { perMessageDeflate: false });
    let joined = false;
    const join = () => ws.send(JSON.stringify({ type: 'join', room: `bench-${token}`, name: `c${index}` }));
    const giveUp = setTimeout(() => {
      ws.terminate();
      reject(new Error(`join of client ${index} not answered within ${receiptTimeoutMs * 3} ms`));
    }, receiptTimeoutMs * 3);
    ws.once('open', join);
    ws.on('message', (data) => {
      lastFrameAt = performance.now();
      const text = data.toString('utf8');
      // Every join is a presence frame to the whole room: skip parsing those, the client core is shared.
      if (text.startsWith('{"type":"presence"')) return;
      const frame = JSON.parse(text);
      if (frame.type === 'history') {
        joined = true;
        clearTimeout(giveUp);
        resolve({ close: () => ws.terminate(), send: (f) => ws.send(JSON.stringify(f)) });
      } else if (frame.type === 'message') {
        received(Number(frame.text));
      } else if (frame.type === 'error') {
        errorFrames++;
        // `unavailable` asks to try again: a join storm can outrun the history reads.
        if (!joined && frame.code === 'unavailable') {
          joinRetries++;
          setTimeout(join, 200);
        } else {
          process.stderr.write(`ws error frame: ${text}\n`);
        }
      }
    });
    ws.once('close', () => {
      clearTimeout(giveUp);
      if (!joined) reject(new Error(`client ${index} closed before joining`));
    });
    ws.once('error', reject);
  });
}

async function publishWs(seq) {
  clients[0].send({ type: 'message', room: `bench-${token}`, text: String(seq) });
}

// ---- the run ------------------------------------------------------------------------
const open = mode === 'sse' ? openSse : openWs;
const publish = mode === 'sse' ? publishSse : publishWs;

class BudgetSpent extends Error {}
const overBudget = () => (Date.now() - started) / 1000 > budgetS;

async function growTo(n) {
  const batch = 100;
  while (clients.length < n) {
    if (overBudget())
      throw new BudgetSpent(`time budget of ${budgetS} s reached while connecting (at ${clients.length} of ${n})`);
    const size = Math.min(batch, n - clients.length);
    const opened = await Promise.allSettled(
      Array.from({ length: size }, (_, i) =>
        Promise.race([
          open(clients.length + i),
          sleep(receiptTimeoutMs * 4).then(() => Promise.reject(new Error('connection not open in time'))),
        ]),
      ),
    );
    for (const o of opened) {
      if (o.status === 'fulfilled') clients.push(o.value);
      else connectErrors++;
    }
    if (connectErrors > 0)
      throw new Error(`${connectErrors} connections failed: ${opened.find((o) => o.status === 'rejected')?.reason}`);
  }
  // Let join/presence traffic settle before timing anything (bounded).
  const settleUntil = performance.now() + 30_000;
  while (performance.now() - lastFrameAt < 500 && performance.now() < settleUntil) {
    if (overBudget()) throw new BudgetSpent(`time budget of ${budgetS} s reached while ${n} connections settled`);
    await sleep(100);
  }
}

const rank = (sorted, p) => sorted[Math.max(1, Math.ceil((p * sorted.length) / 100)) - 1] ?? NaN;

let nextSeq = 0;
async function measure(n) {
  const last = [];
  const all = [];
  let timeouts = 0;
  for (let m = 0; m < messages; m++) {
    const seq = nextSeq++;
    const finished = new Promise((resolve) => {
      current = { seq, sentAt: performance.now(), pending: n, receipts: [], done: resolve };
    });
    const timer = sleep(receiptTimeoutMs).then(() => 'timeout');
    const answeredAt = await publish(seq);
    const outcome = await Promise.race([finished, timer]);
    if (outcome === 'timeout') timeouts++;
    const from = mode === 'sse' ? Math.min(answeredAt, current.receipts[0] ?? Infinity) : current.sentAt;
    const delays = current.receipts.map((t) => t - from);
    all.push(...delays);
    last.push(outcome === 'timeout' ? receiptTimeoutMs : delays.at(-1));
    current = { seq: -1, sentAt: 0, pending: 0, receipts: [], done: () => {} };
    await sleep(intervalMs);
  }
  last.sort((a, b) => a - b);
  all.sort((a, b) => a - b);
  return {
    n,
    messages,
    timeouts,
    lastP50: rank(last, 50),
    lastP99: rank(last, 99),
    allP50: rank(all, 50),
    allP99: rank(all, 99),
    receipts: all.length,
    expectedReceipts: n * messages,
  };
}

const rss0 = serverPid === undefined ? NaN : rssOf(serverPid);
const results = [];
let stopReason = 'all steps passed';
try {
  for (const n of steps) {
    if (overBudget()) {
      stopReason = `time budget of ${budgetS} s reached`;
      break;
    }
    await growTo(n);
    const rss = serverPid === undefined ? NaN : rssOf(serverPid);
    const r = { ...(await measure(n)), rss, rssPerConnection: (rss - rss0) / n, joinRetries };
    results.push(r);
    process.stderr.write(
      `[${mode}] N=${n} delivery p50 ${r.allP50.toFixed(1)} ms p99 ${r.allP99.toFixed(1)} ms (last receipt p99 ${r.lastP99.toFixed(1)} ms), ${(r.rssPerConnection / 1024).toFixed(1)} KiB/conn\n`,
    );
    if (r.allP99 > maxP99Ms || r.timeouts > 0) {
      stopReason = r.timeouts > 0 ? `receipts timed out at N=${n}` : `delivery p99 over ${maxP99Ms} ms at N=${n}`;
      break;
    }
  }
} catch (error) {
  stopReason =
    error instanceof BudgetSpent ? error.message : `error: ${error instanceof Error ? error.message : String(error)}`;
}
for (const c of clients) c.close();
process.stdout.write(
  `${JSON.stringify({ mode, rss0, results, stopReason, connectErrors, joinRetries, errorFrames })}\n`,
);
process.exit(0);
