// A raw event-stream client for the benchmark's child processes: node:http with a
// socket of its own per stream (no agent), the body cut into events here.
/* global performance */
import { request } from 'node:http';

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
