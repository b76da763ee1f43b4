import { once } from 'node:events';
import net from 'node:net';

export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * A loopback TCP proxy a test can pull the plug on: `cut()` drops every open
 * connection and stops listening (new connects are refused, as when a database
 * server is down), `restore()` listens again on the same port.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private boundPort: number | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly target: ProxyTarget) {}

  /** The port the proxy listens on (stable across cut/restore). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error('proxy not started');
    return this.boundPort;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<number> {
    if (this.server !== undefined) throw new Error('proxy already started');
    await this.listen(0);
    return this.port;
  }

  /** Destroys every open client and upstream socket and stops accepting connections. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed =
      server === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) =>
            server.close(() => {
              resolve();
            }),
          );
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    if (this.server !== undefined) return;
    // The port was just released; retry briefly in case the kernel still holds it.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.listen(this.port);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private async listen(port: number): Promise<void> {
    const server = net.createServer((client) => {
      this.pipe(client);
    });
    server.listen({ host: '127.0.0.1', port, exclusive: true });
    try {
      await Promise.race([
        once(server, 'listening'),
        once(server, 'error').then(([error]) => Promise.reject(error as Error)),
      ]);
    } catch (error) {
      server.close();
      throw error;
    }
    server.on('error', () => {});
    this.server = server;
    this.boundPort = (server.address() as net.AddressInfo).port;
  }

  private pipe(client: net.Socket): void {
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    this.sockets.add(client);
    this.sockets.add(upstream);
    const teardown = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('close', teardown);
    upstream.on('close', teardown);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/**
 * Starts a proxy to the server a URL names (its port, else `defaultPort`) and
 * returns it with that URL pointed at the proxy, for an app's configuration.
 */
export async function proxyTo(url: string, defaultPort: number): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(url);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || defaultPort) });
  await proxy.start();
  const viaProxy = new URL(url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  return { proxy, url: viaProxy.toString() };
}
