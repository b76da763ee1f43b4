import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import net from 'node:net';
import pg from 'pg';
import { dataSourceOptions } from '../../src/database/data-source.factory.js';
import { databaseUnavailableReason } from '../../src/database/database.errors.js';
import { FakePgServer } from '../support/fake-pg-server.js';

/**
 * The real pg driver against a loopback stand-in server in the states a
 * database can be in: the errors the classifier sees are the driver's own,
 * and no state of the server can crash the process.
 */

const server = new FakePgServer();

beforeAll(async () => {
  await server.start();
});

afterAll(async () => {
  await server.close();
});

async function failure(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

/** The pg.Pool settings the app's DataSource gives its pool (timeouts, the client error guard). */
function appPoolOptions(size: number, connectTimeoutMs: number): pg.PoolConfig {
  const options = dataSourceOptions({
    url: 'postgres://app@127.0.0.1/app',
    pool: { size, connectTimeoutMs, idleTimeoutMs: 30_000, statementTimeoutMs: 0, namedStatements: false },
  });
  return { ...(options as { extra: pg.PoolConfig }).extra, ...server.config };
}

describe('errors from the real pg driver', () => {
  it('ECONNREFUSED from a closed port', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const error = await failure(() => new pg.Client({ host: '127.0.0.1', port, user: 'app' }).connect());
    expect(error).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
    expect(databaseUnavailableReason(error)).toBe('connection');
  });

  it('55000 FATAL when the database does not accept connections', async () => {
    server.behaviour = 'refuse-55000';
    const error = await failure(() => new pg.Client(server.config).connect());
    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect(error).toMatchObject({ code: '55000', severity: 'FATAL' });
    expect(databaseUnavailableReason(error)).toBe('not_accepting');
  });

  it('57P01 when the backend is terminated mid-query, then a dead client', async () => {
    server.behaviour = 'kill-on-query';
    const client = new pg.Client(server.config);
    client.on('error', () => {});
    await client.connect();
    const error = await failure(() => client.query('SELECT pg_sleep(10)'));
    expect(error).toMatchObject({ code: '57P01', severity: 'FATAL' });
    expect(databaseUnavailableReason(error)).toBe('shutdown');
    expect(databaseUnavailableReason(await failure(() => client.query('SELECT 1')))).toBe('connection');
  });

  it("pg-pool's checkout timeout when every connection is busy, and a pool that has ended", async () => {
    server.behaviour = 'ready';
    const pool = new pg.Pool(appPoolOptions(1, 100));
    const held = await pool.connect();
    try {
      const error = await failure(() => pool.query('SELECT 1'));
      expect((error as Error).message).toBe('timeout exceeded when trying to connect');
      expect(databaseUnavailableReason(error)).toBe('timeout');
    } finally {
      held.release();
      await pool.end();
    }
    expect(databaseUnavailableReason(await failure(() => pool.query('SELECT 1')))).toBe('shutdown');
  });

  it("pg-pool's connect timeout when the server never finishes the handshake", async () => {
    server.behaviour = 'silent';
    const pool = new pg.Pool(appPoolOptions(1, 100));
    try {
      const error = await failure(() => pool.query('SELECT 1'));
      expect((error as Error).message).toMatch(/timeout/);
      expect(databaseUnavailableReason(error)).toBe('timeout');
    } finally {
      await pool.end();
    }
  });
});

describe("the app's pool and a backend terminated right after a query", () => {
  it('survives a FATAL that arrives while the client is being handed to the next request', async () => {
    // The result and the FATAL arrive in one chunk: the query's callback releases the client
    // straight to the waiting checkout (pg-pool drops its idle listener), and the FATAL is
    // parsed before that checkout's code runs. Without a listener of its own on every client,
    // that 'error' event is unhandled and takes the process down.
    server.behaviour = 'answer-then-kill';
    const pool = new pg.Pool(appPoolOptions(1, 1000));
    pool.on('error', () => {});
    try {
      const first = pool.query('SELECT 1');
      const next = pool.connect();
      await first;
      const client = await next;
      try {
        const error = await failure(() => client.query('SELECT 1'));
        expect(databaseUnavailableReason(error)).toBe('connection');
      } finally {
        client.release();
      }
      // The dead client left the pool; the next request gets a fresh connection.
      server.behaviour = 'ready';
      await expect(pool.query('SELECT 1')).resolves.toBeDefined();
    } finally {
      await pool.end();
    }
  });
});
