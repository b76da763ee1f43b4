import { EmbeddedPostgres } from '../../src/database/embedded/embedded-postgres.js';
import { proxyTo, type TcpProxy } from './tcp-proxy.js';
import { externalDatabaseUrl } from './test-app.js';
import { createTestDatabase } from './test-database.js';

/** A database the test can take away from the app: the app connects through a TCP proxy the test cuts. */
export interface ProxiedDatabase {
  /** Straight to the database, for the test's own queries (never cut). */
  readonly directUrl: string;
  /** Through the proxy, for the app's DATABASE_URL. */
  readonly appUrl: string;
  readonly proxy: TcpProxy;
  /** True on the embedded database (no DATABASE_URL), whose connections share one session. */
  readonly embedded: boolean;
  /** Closes the proxy, stops the embedded server or drops the test database; every step is tried. */
  close(): Promise<void>;
}

/**
 * A fresh database (a new one on DATABASE_URL's server, else an embedded
 * server in memory with `maxConnections`) behind a proxy on loopback. Cutting
 * the proxy looks to the app exactly like the server going away (open
 * connections drop, new ones are refused) and coming back on the same address.
 */
export async function startProxiedDatabase(options: { readonly maxConnections: number }): Promise<ProxiedDatabase> {
  const external = externalDatabaseUrl();
  let embedded: EmbeddedPostgres | undefined;
  let drop: () => Promise<void> = async () => {};
  let directUrl: string;
  if (external !== undefined) {
    const database = await createTestDatabase(external);
    if (database.url === undefined) throw new Error('no test database');
    drop = database.drop;
    directUrl = database.url;
  } else {
    embedded = new EmbeddedPostgres({ dataDir: 'memory://', port: 0, maxConnections: options.maxConnections });
    directUrl = await embedded.start();
  }
  const { proxy, url: appUrl } = await proxyTo(directUrl, 5432);
  return {
    directUrl,
    appUrl,
    proxy,
    embedded: embedded !== undefined,
    close: async () => {
      const errors: unknown[] = [];
      for (const step of [() => proxy.close(), () => embedded?.stop(), drop]) {
        try {
          await step();
        } catch (error) {
          errors.push(error);
        }
      }
      if (errors.length > 0) throw errors[0];
    },
  };
}
