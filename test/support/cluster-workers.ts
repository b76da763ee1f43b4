import { get, type Agent, type IncomingMessage } from 'node:http';
import { Client } from 'undici';

/*
 * Telling cluster workers apart from outside: every request on one keep-alive
 * connection is served by the worker that accepted it, and /health names its pid.
 */

/** The pid a /health answer names. */
function pidIn(status: number, text: string): number {
  if (status !== 200) throw new Error(`/health answered ${String(status)}: ${text}`);
  return (JSON.parse(text) as { info: { process: { pid: number } } }).info.process.pid;
}

/** The pid of the worker serving this connection. */
export async function pidOf(client: Client): Promise<number> {
  const res = await client.request({ method: 'GET', path: '/health' });
  return pidIn(res.statusCode, await res.body.text());
}

/**
 * The pid of the worker behind the one socket of a keep-alive `agent` (maxSockets 1), which
 * then stays free in it: a WebSocket opened with that agent upgrades the same connection.
 */
export async function pidOverAgent(url: string, agent: Agent): Promise<number> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    get(`${url}/health`, { agent }, resolve).on('error', reject);
  });
  let text = '';
  for await (const chunk of res) text += String(chunk);
  return pidIn(res.statusCode ?? 0, text);
}

/** The pid of the worker that serves a new connection. */
export async function pidOfNewConnection(url: string): Promise<number> {
  const client = new Client(url);
  try {
    return await pidOf(client);
  } finally {
    await client.close();
  }
}

/** Opens connections until two are served by different workers (the second worker may still be starting). */
export async function connectionsOnTwoWorkers(url: string): Promise<[Client, Client]> {
  const started = Date.now();
  const first = new Client(url);
  const firstPid = await pidOf(first);
  for (;;) {
    const other = new Client(url);
    if ((await pidOf(other)) !== firstPid) return [first, other];
    await other.close();
    if (Date.now() - started > 30_000) throw new Error('only one worker answered within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls `check` every 100 ms until it holds; throws after `ms`. */
export async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${String(ms)} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether a process with this pid is still running. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
