import { once } from 'node:events';
import net from 'node:net';

/** What the stand-in server does with the next connection's startup and queries. */
export type FakePgBehaviour =
  /** Completes the handshake; answers every query with an empty result. */
  | 'ready'
  /** Accepts the TCP connection and never answers (a handshake that times out). */
  | 'silent'
  /** Refuses the session with FATAL 55000, as a database with ALLOW_CONNECTIONS false does. */
  | 'refuse-55000'
  /** Completes the handshake; answers a query with FATAL 57P01 and closes (pg_terminate_backend). */
  | 'kill-on-query'
  /**
   * Completes the handshake; answers a query with its result and, in the same
   * write, FATAL 57P01 (a backend terminated right after finishing a query).
   */
  | 'answer-then-kill';

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const errorResponse = (fields: Record<string, string>): Buffer =>
  message(
    'E',
    Buffer.concat([...Object.entries(fields).map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0])]),
  );

const AUTH_OK = message('R', Buffer.from([0, 0, 0, 0]));
const READY = message('Z', Buffer.from('I'));
const SELECT_0 = message('C', Buffer.from('SELECT 0\0'));
const TERMINATED = errorResponse({
  S: 'FATAL',
  V: 'FATAL',
  C: '57P01',
  M: 'terminating connection due to administrator command',
  F: 'postgres.c',
  R: 'ProcessInterrupts',
});
const NOT_ACCEPTING = errorResponse({
  S: 'FATAL',
  V: 'FATAL',
  C: '55000',
  M: 'database "app" is not currently accepting connections',
  F: 'postinit.c',
  R: 'CheckMyDatabase',
});

/**
 * A loopback server that speaks just enough of the PostgreSQL wire protocol
 * (no auth, simple queries only) for the real pg driver to connect, query and
 * fail exactly as against a server in the states a test needs.
 */
export class FakePgServer {
  behaviour: FakePgBehaviour = 'ready';
  private readonly server = net.createServer((socket) => {
    this.serve(socket);
  });
  private readonly sockets = new Set<net.Socket>();

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Connection settings for pg.Client / pg.Pool. */
  get config(): { host: string; port: number; user: string; database: string } {
    return { host: '127.0.0.1', port: this.port, user: 'app', database: 'app' };
  }

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const behaviour = this.behaviour;
    let started = false;
    socket.on('data', (data: Buffer) => {
      if (!started) {
        // The startup message (no SSL request: pg sends none without ssl options).
        started = true;
        if (behaviour === 'silent') return;
        if (behaviour === 'refuse-55000') {
          socket.end(NOT_ACCEPTING);
          return;
        }
        socket.write(Buffer.concat([AUTH_OK, READY]));
        return;
      }
      if (data[0] !== 'Q'.charCodeAt(0)) return;
      if (behaviour === 'kill-on-query') socket.end(TERMINATED);
      else if (behaviour === 'answer-then-kill') socket.end(Buffer.concat([SELECT_0, READY, TERMINATED]));
      else socket.write(Buffer.concat([SELECT_0, READY]));
    });
  }
}
