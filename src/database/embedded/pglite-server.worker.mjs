// Runs PGlite and its wire-protocol server on a worker thread, so query work
// never blocks the API's event loop. Plain JavaScript: workers are not
// transpiled by the test runner, and this file is copied into dist as is.
import { mkdirSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const { dataDir, host, port, maxConnections } = workerData;

let db;
let server;

async function start() {
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  db = await PGlite.create(dataDir);
  server = new PGLiteSocketServer({ db, host, port, maxConnections });
  await server.start();
  const address = server.getServerConn();
  parentPort.postMessage({ type: 'ready', port: Number(address.split(':').pop()) });
}

async function stop() {
  try {
    if (server) await server.stop();
    if (db && !db.closed) await db.close();
    parentPort.postMessage({ type: 'stopped' });
  } catch (error) {
    parentPort.postMessage({ type: 'error', message: String(error?.message ?? error) });
  }
}

parentPort.on('message', (message) => {
  if (message?.type === 'stop') void stop();
});

start().catch((error) => {
  parentPort.postMessage({ type: 'error', message: String(error?.message ?? error) });
});
