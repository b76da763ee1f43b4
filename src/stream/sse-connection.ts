import type { ServerResponse } from 'node:http';

export interface SseMessage {
  readonly id?: string;
  readonly event?: string;
  readonly data: string;
}

/** Encodes one message in the text/event-stream format (data split on newlines). */
export function encodeSse(message: SseMessage): string {
  let out = '';
  if (message.id !== undefined) out += `id: ${message.id}\n`;
  if (message.event !== undefined) out += `event: ${message.event}\n`;
  for (const line of message.data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * One open text/event-stream response with a bounded send buffer: a client
 * that does not read fast enough is disconnected instead of letting unsent
 * bytes pile up in memory. Closing releases every listener registered
 * through `onClose`. Heartbeats are the owner's (one timer for all streams).
 */
export class SseConnection {
  private readonly cleanups: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferBytes: number,
    private readonly onSlowClient: () => void,
  ) {
    res.once('close', () => {
      this.release();
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Writes the response head; extra headers (security, request id) come from the caller. */
  open(headers: Record<string, string>): void {
    this.res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    this.res.flushHeaders();
  }

  /** Sends a message; returns false once the connection is gone (or was dropped as too slow). */
  send(message: SseMessage): boolean {
    return this.write(encodeSse(message));
  }

  /** Writes an encoded message (or comment) as it is: a fan-out encodes once and passes the same buffer to all. */
  sendEncoded(chunk: Buffer): boolean {
    return this.write(chunk);
  }

  comment(text: string): boolean {
    return this.write(`: ${text}\n\n`);
  }

  retry(ms: number): boolean {
    return this.write(`retry: ${String(ms)}\n\n`);
  }

  /** Resolves when the socket has room again (or closes). */
  drained(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }

  onClose(cleanup: () => void): void {
    if (this.closed) cleanup();
    else this.cleanups.push(cleanup);
  }

  end(): void {
    if (this.closed) return;
    this.res.end();
  }

  private write(chunk: string | Buffer): boolean {
    if (this.closed) return false;
    if (this.res.writableLength > this.maxBufferBytes) {
      this.onSlowClient();
      this.res.destroy();
      this.release();
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
