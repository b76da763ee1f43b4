// A raw event-stream client for the benchmark's child processes: node:http with a
// socket of its own per stream (no agent), the body cut into events here.
/* global performance */
import { request } from 'node:http';
import { connect } from 'node:net';

/** A stream that did not answer 200: its status and Retry-After (seconds, when given). */
export class StreamRefused extends Error {
  constructor(url, status, retryAfter) {
    super(`${new URL(url).pathname} answered ${status}`);
    this.status = status;
    this.retryAfterS = retryAfter === undefined ? undefined : Number(retryAfter);
  }
}

/**
 * Opens `url` as text/event-stream. Resolves with `{ close }` once it answered 200
 * (rejects with StreamRefused otherwise, or the socket's error); then calls
 * `onEvent(block, at)` for each event (its lines, without the blank line that ends
 * it; `at` is when its chunk arrived, epoch ms with a fraction), and `onEnd()` when
 * the stream ends by itself or is closed.
 */
export function openEventStream(url, { onEvent, onEnd = () => {} }) {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream' }, agent: false });
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new StreamRefused(url, res.statusCode, res.headers['retry-after']));
        return;
      }
      let pending = '';
      res.on('data', (chunk) => {
        const at = performance.timeOrigin + performance.now();
        const text = pending + chunk.toString('latin1');
        let from = 0;
        let end;
        while ((end = text.indexOf('\n\n', from)) !== -1) {
          onEvent(text.slice(from, end), at);
          from = end + 2;
        }
        pending = text.slice(from);
      });
      res.on('error', () => {});
      res.once('close', onEnd);
      resolve({ close: () => req.destroy() });
    });
    req.once('error', reject);
    req.end();
  });
}

/**
 * The cheapest client for thousands of streams in one process: a bare TCP socket
 * that sends the GET itself and, past the response head, only looks for
 * `marker` followed by digits (e.g. `"userId":`), calling `onMatch(number, at)`
 * for each; nothing is decoded or parsed otherwise (the chunk framing between
 * events is skipped like any other byte). Resolves with `{ close }` once the head
 * says 200; rejects with StreamRefused otherwise.
 */
export function openMarkedStream(url, { marker, onMatch, onData = () => {}, onEnd = () => {} }) {
  const { hostname, port, pathname, search } = new URL(url);
  const needle = Buffer.from(marker);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let head = '';
    let live = false;
    // The end of the previous read: a marker or its number may straddle two reads.
    let tail = Buffer.alloc(0);
    socket.once('connect', () => {
      socket.write(
        `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
      );
    });
    socket.on('data', (chunk) => {
      const at = performance.timeOrigin + performance.now();
      onData(at);
      let body = chunk;
      if (!live) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
        if (status !== 200) {
          socket.destroy();
          reject(new StreamRefused(url, status, /\r\nretry-after: *(\d+)/i.exec(head)?.[1]));
          return;
        }
        live = true;
        resolve({ close: () => socket.destroy() });
        body = Buffer.from(head.slice(end + 4), 'latin1');
      }
      const text = tail.length === 0 ? body : Buffer.concat([tail, body]);
      let from = 0;
      let at0;
      while ((at0 = text.indexOf(needle, from)) !== -1) {
        let i = at0 + needle.length;
        let n = 0;
        while (i < text.length && text[i] >= 48 && text[i] <= 57) n = n * 10 + (text[i++] - 48);
        // The number runs to the end of this read: wait for the rest.
        if (i === text.length) break;
        if (i > at0 + needle.length) onMatch(n, at);
        from = i;
      }
      tail = text.subarray(Math.max(from, text.length - needle.length - 16));
    });
    socket.on('error', (error) => {
      if (!live) reject(error);
    });
    socket.once('close', () => {
      if (live) onEnd();
    });
  });
}
