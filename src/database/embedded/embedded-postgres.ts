import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

type WorkerMessage = { type: 'ready'; port: number } | { type: 'stopped' } | { type: 'error'; message: string };

export interface EmbeddedPostgresOptions {
  /** A folder for the data, or `memory://` for a throw-away database. */
  readonly dataDir: string;
  /** Loopback port; 0 picks a free one. */
  readonly port: number;
  /** Wire connections the multiplexer accepts; match the pool size. */
  readonly maxConnections: number;
}

/**
 * PostgreSQL compiled to WASM (PGlite), served over the wire protocol on a
 * loopback port from a worker thread, so the app talks to it with the same
 * `pg` driver it uses for a real server.
 */
export class EmbeddedPostgres {
  private worker: Worker | undefined;
  private boundPort: number | undefined;

  constructor(private readonly options: EmbeddedPostgresOptions) {}

  get url(): string {
    if (this.boundPort === undefined) throw new Error('embedded PostgreSQL is not running');
    return `postgres://postgres:postgres@127.0.0.1:${this.boundPort}/postgres`;
  }

  get port(): number | undefined {
    return this.boundPort;
  }

  async start(): Promise<string> {
    const worker = new Worker(new URL('./pglite-server.worker.mjs', import.meta.url), {
      workerData: {
        dataDir: this.options.dataDir,
        host: '127.0.0.1',
        port: this.options.port,
        maxConnections: this.options.maxConnections,
      },
    });
    this.worker = worker;
    const message = await this.nextMessage(worker);
    if (message.type !== 'ready') {
      await worker.terminate();
      this.worker = undefined;
      throw new Error(
        `embedded PostgreSQL failed to start: ${message.type === 'error' ? message.message : message.type}`,
      );
    }
    this.boundPort = message.port;
    return this.url;
  }

  /** Closes every connection and the database (flushing it to disk), then ends the worker. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    this.boundPort = undefined;
    const reply = this.nextMessage(worker);
    worker.postMessage({ type: 'stop' });
    try {
      await reply;
    } finally {
      await worker.terminate();
    }
  }

  private async nextMessage(worker: Worker): Promise<WorkerMessage> {
    const onMessage = once(worker, 'message').then(([m]) => m as WorkerMessage);
    const onExit = once(worker, 'exit').then(([code]): WorkerMessage => ({
      type: 'error',
      message: `worker exited with code ${String(code)}`,
    }));
    return Promise.race([onMessage, onExit]);
  }
}
