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
 * One piece of an event stream, encoded once for every subscriber: its bytes,
 * and the same bytes framed as an HTTP/1.1 chunk (length, CRLF, data, CRLF),
 * made on first use.
 */
export class SseChunk {
  private framed: Buffer | undefined;

  constructor(readonly data: Buffer) {}

  static of(text: string): SseChunk {
    return new SseChunk(Buffer.from(text));
  }

  get chunked(): Buffer {
    this.framed ??= Buffer.concat([
      Buffer.from(`${this.data.length.toString(16)}\r\n`),
      this.data,
      Buffer.from('\r\n'),
    ]);
    return this.framed;
  }
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
  /** Something was written since the last keepalive round: the stream is not idle, it needs no keepalive. */
  wroteSinceKeepalive = false;

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
    return this.write(SseChunk.of(encodeSse(message)));
  }

  /** Writes an encoded message (or comment): a fan-out encodes once and passes the same chunk to all. */
  sendEncoded(chunk: SseChunk): boolean {
    return this.write(chunk);
  }

  comment(text: string): boolean {
    return this.write(SseChunk.of(`: ${text}\n\n`));
  }

  retry(ms: number): boolean {
    return this.write(SseChunk.of(`retry: ${String(ms)}\n\n`));
  }

  /** Resolves when the socket has room again (or closes). */
  drained(): Promise<void> {
    const socket = this.res.socket;
    if (this.closed || socket === null || !socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      socket.once('drain', done);
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

  /**
   * Straight to the socket once the head is out: the response's own write
   * would frame and copy each chunk per subscriber, where the chunk here is
   * framed once for all (HTTP/1.0 clients get the bytes unframed, as Node
   * would send them).
   */
  private write(chunk: SseChunk): boolean {
    if (this.closed) return false;
    const socket = this.res.socket;
    if (socket === null || socket.destroyed) return false;
    if (socket.writableLength > this.maxBufferBytes) {
      this.onSlowClient();
      this.res.destroy();
      this.release();
      return false;
    }
    // The response still holds bytes of its own (its head queued behind a pipelined response): it frames this too.
    this.wroteSinceKeepalive = true;
    if (this.res.writableLength !== socket.writableLength) this.res.write(chunk.data);
    else socket.write(this.res.chunkedEncoding ? chunk.chunked : chunk.data);
    return true;
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}
