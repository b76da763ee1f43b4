/**
 * The fuzz tier's runner and oracles: bounded runs (FUZZ_RUNS), replayable
 * seeds (FUZZ_SEED, FUZZ_PATH), real sockets (undici for well-formed
 * requests, node:net for malformed HTTP), and the checks every answer must pass.
 */
import fc from 'fast-check';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import type { TestApp } from '../support/test-app.js';
import { ADMIN } from '../support/tokens.js';
import { preview } from './arbitraries.js';
import { routeAt, takesBearer } from './routes.js';

// ---------------------------------------------------------------- configuration

const envInt = (name: string): number | undefined => {
  const value = process.env[name];
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${value}`);
  return n;
};

/** FUZZ_RUNS=N: every property runs N cases (the bounded default is each property's own, a few dozen). */
export const FUZZ_RUNS = envInt('FUZZ_RUNS');
/** FUZZ_SEED=S: every property starts from seed S (a failure prints the one it used). */
export const FUZZ_SEED = envInt('FUZZ_SEED');
/** FUZZ_PATH=P (with FUZZ_SEED and `-t` naming one property): replays exactly the shrunk counterexample. */
export const FUZZ_PATH = process.env['FUZZ_PATH'] === '' ? undefined : process.env['FUZZ_PATH'];

/** Cases for a property whose bounded default is `bounded`. */
export const runs = (bounded: number): number => FUZZ_RUNS ?? bounded;

/** Jest timeout for a property: generous for long runs, bounded otherwise. */
export const timeoutFor = (bounded: number): number =>
  FUZZ_RUNS === undefined ? 60_000 : Math.max(60_000, FUZZ_RUNS * 200 * Math.max(1, bounded / 50));

/** Level 50 (error) and above. */
export const isErrorLine = (line: Record<string, unknown>): boolean =>
  typeof line['level'] === 'number' && line['level'] >= 50;

const unhandled: string[] = [];
let listening = false;

/** Records every unhandled rejection and uncaught exception of this process (the app runs in it). */
export function watchProcess(): void {
  if (listening) return;
  listening = true;
  process.on('unhandledRejection', (reason) => {
    unhandled.push(
      `unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
    );
  });
  process.on('uncaughtExceptionMonitor', (error) => {
    unhandled.push(`uncaughtException: ${error.stack ?? error.message}`);
  });
}

/** Unhandled rejections and uncaught exceptions since the index given. */
export const unhandledSince = (mark: number): string[] => unhandled.slice(mark);
export const unhandledMark = (): number => unhandled.length;

/** An error that carries the category of the input that broke the property. */
export class Violation extends Error {
  constructor(
    readonly category: string,
    message: string,
  ) {
    super(`[${category}] ${message}`);
    this.name = 'Violation';
  }
}

/**
 * Runs one property: `cases` inputs from `arb`, each through `predicate`,
 * then checks the app logged no error and that nothing went unhandled for
 * that input. A failure names the property, the seed and path to replay,
 * and the shrunk counterexample.
 */
export async function fuzz<T>(
  t: TestApp,
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  options: { readonly runs: number; readonly timeLimitMs?: number },
): Promise<void> {
  const seed = FUZZ_SEED ?? (Date.now() ^ Math.floor(Math.random() * 0x1_0000_0000)) | 0;
  const property = fc.asyncProperty(arb, async (value) => {
    const logMark = t.logs.length;
    const processMark = unhandledMark();
    await predicate(value);
    // Errors logged after the answer (a background task) belong to this input too.
    await new Promise((resolve) => setImmediate(resolve));
    const errors = t.logs.slice(logMark).filter(isErrorLine);
    if (errors.length > 0) {
      throw new Violation(
        'error logged',
        `the app logged at level >= 50 for this input:\n${errors.map((l) => preview(l, 1_500)).join('\n')}`,
      );
    }
    const escaped = unhandledSince(processMark);
    if (escaped.length > 0) throw new Violation('unhandled', escaped.join('\n'));
  });
  const details = await fc.check(property, {
    numRuns: FUZZ_PATH === undefined ? options.runs : 1,
    seed,
    ...(FUZZ_PATH === undefined ? {} : { path: FUZZ_PATH }),
    endOnFailure: false,
    // A bounded property takes a few seconds; one still running after the limit is stuck, which is a failure too.
    plugins: [
      fc.interruptAfterTimeLimit(options.timeLimitMs ?? (FUZZ_RUNS === undefined ? 30_000 : 3_600_000), {
        failOnInterrupt: true,
      }),
    ],
  });
  if (details.failed) {
    const replay =
      `FUZZ_SEED=${String(details.seed)} FUZZ_PATH=${details.counterexamplePath ?? ''} ` +
      `NODE_OPTIONS=--experimental-vm-modules npx jest test/fuzz -t '${name.replace(/'/g, "'\\''")}'`;
    const report = (await fc.asyncDefaultReportMessage(details)) ?? 'failed';
    const error = details.errorInstance;
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `fuzz property "${name}" failed (seed ${String(details.seed)}).\nReplay: ${replay}\n${report}\nError: ${why}`,
    );
  }
}

// ---------------------------------------------------------------- HTTP over real sockets

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
  /** The body was not read (an event stream), only the head. */
  readonly streamed: boolean;
}

export interface HttpCall {
  readonly method: string;
  /** Path and query, as sent on the request line. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** Sent without a credential even where the route takes one (see `withCredential`). */
  readonly anonymous?: boolean;
}

/** The admin's Authorization header (a token from the test apps' issuer, every scope). */
export const ADMIN_AUTHORIZATION = `Bearer ${ADMIN}`;

/**
 * The call as `send` puts it on the wire: on a route that takes bearer tokens
 * (writes, the admin view, a notification's state, the compute route) it
 * carries the admin token, unless it has an Authorization header of its own
 * or is marked anonymous. So the route properties reach validation and the
 * handler; what anonymous and unscoped callers get is a property of its own.
 */
export function withCredential(call: HttpCall): HttpCall {
  if (call.anonymous === true) return call;
  const headers = call.headers ?? {};
  if (Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) return call;
  const target = routeAt(call.method, call.path);
  if (target === undefined || !takesBearer(target.access)) return call;
  return { ...call, headers: { ...headers, authorization: ADMIN_AUTHORIZATION } };
}

/** One keep-alive agent for every well-formed request of a suite. */
export const agent = new Agent({
  connections: 4,
  headersTimeout: 15_000,
  bodyTimeout: 15_000,
  keepAliveTimeout: 2_000,
});

const flatHeaders = (headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v]));

/**
 * Sends a well-formed request with undici, with the admin token where the
 * route takes one (`withCredential`); an event stream's body is not read (only its head).
 */
export async function send(t: TestApp, given: HttpCall): Promise<HttpAnswer> {
  const call = withCredential(given);
  const res = await request(`${t.url}${call.path}`, {
    method: call.method as 'GET',
    headers: { ...call.headers },
    ...(call.body === undefined ? {} : { body: call.body }),
    dispatcher: agent,
  });
  const headers = flatHeaders(res.headers);
  if ((headers['content-type'] ?? '').startsWith('text/event-stream')) {
    // Destroying the body reports an abort to its listeners: expected here, nothing to handle.
    res.body.on('error', () => undefined);
    res.body.destroy();
    return { status: res.statusCode, headers, body: Buffer.alloc(0), streamed: true };
  }
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers, body, streamed: false };
}

export interface RawAnswer {
  /** Undefined when the server closed or timed out without a complete status line. */
  readonly answer: HttpAnswer | undefined;
  readonly closedWithoutAnswer: boolean;
  readonly timedOut: boolean;
  readonly bytes: Buffer;
}

/** Parses one HTTP/1.x response from bytes; undefined until the whole response (head and body) is there. */
export function parseResponse(bytes: Buffer, complete: boolean, noBody = false): HttpAnswer | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const head = bytes.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
  if (statusLine?.[1] === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  const status = Number(statusLine[1]);
  const rest = bytes.subarray(headEnd + 4);
  if ((headers['content-type'] ?? '').startsWith('text/event-stream')) {
    return { status, headers, body: Buffer.alloc(0), streamed: true };
  }
  if (noBody || status === 101 || status === 204 || status === 304)
    return { status, headers, body: Buffer.alloc(0), streamed: false };
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length) return complete ? { status, headers, body: rest, streamed: false } : undefined;
    return { status, headers, body: rest.subarray(0, length), streamed: false };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return complete ? { status, headers, body: Buffer.concat(chunks), streamed: false } : undefined;
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) return { status, headers, body: Buffer.concat(chunks), streamed: false };
      if (size === 0) return { status, headers, body: Buffer.concat(chunks), streamed: false };
      if (rest.length < lineEnd + 2 + size) {
        return complete ? { status, headers, body: Buffer.concat(chunks), streamed: false } : undefined;
      }
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  return complete ? { status, headers, body: rest, streamed: false } : undefined;
}

/**
 * Writes raw bytes to a fresh connection and reads one response: for
 * requests undici refuses to send (bad Content-Length, control characters,
 * odd methods and versions, oversized heads).
 */
export async function sendRaw(t: TestApp, bytes: Buffer, timeoutMs = 3_000): Promise<RawAnswer> {
  const { port, hostname } = new URL(t.url);
  // The answer to HEAD has no body, whatever its Content-Length says.
  const head = bytes.subarray(0, 5).toString('latin1') === 'HEAD ';
  return new Promise<RawAnswer>((resolve) => {
    const socket = connect({ port: Number(port), host: hostname });
    const received: Buffer[] = [];
    let settled = false;
    const finish = (result: Omit<RawAnswer, 'bytes'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...result, bytes: Buffer.concat(received) });
    };
    const timer = setTimeout(() => {
      finish({
        answer: parseResponse(Buffer.concat(received), true, head),
        closedWithoutAnswer: false,
        timedOut: true,
      });
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      const answer = parseResponse(Buffer.concat(received), false, head);
      if (answer !== undefined) finish({ answer, closedWithoutAnswer: false, timedOut: false });
    });
    socket.on('error', () => {
      // a reset after the answer (or instead of one) is judged by what arrived
    });
    socket.on('close', () => {
      const answer = parseResponse(Buffer.concat(received), true, head);
      finish({ answer, closedWithoutAnswer: answer === undefined, timedOut: false });
    });
    socket.write(bytes);
  });
}

// ---------------------------------------------------------------- oracles

/** 503s the service documents; each only with its problem document. */
export const DOCUMENTED_503 = new Set(['database_unavailable', 'overloaded', 'dependency_unavailable']);

export const describeAnswer = (a: HttpAnswer): string =>
  `${String(a.status)} content-type=${a.headers['content-type'] ?? '(none)'} allow=${a.headers['allow'] ?? '(none)'} body=${preview(a.body.toString('utf8'), 400)}`;

/** The problem document in an answer, or why it is not one. */
export function problemOf(a: HttpAnswer, method: string): { doc: Record<string, unknown> | undefined; error?: string } {
  const type = a.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/problem+json')) {
    return { doc: undefined, error: `a ${String(a.status)} must be application/problem+json, was ${type || '(none)'}` };
  }
  if (method === 'HEAD') return { doc: {} };
  let doc: unknown;
  try {
    doc = JSON.parse(a.body.toString('utf8'));
  } catch {
    return { doc: undefined, error: 'the problem document is not JSON' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { doc: undefined, error: 'the problem document is not an object' };
  }
  const p = doc as Record<string, unknown>;
  if (p['status'] !== a.status) {
    return { doc: p, error: `problem status ${String(p['status'])} differs from HTTP status ${String(a.status)}` };
  }
  if (typeof p['type'] !== 'string' || typeof p['title'] !== 'string' || typeof p['code'] !== 'string') {
    return { doc: p, error: 'the problem document lacks type, title or code' };
  }
  return { doc: p };
}

/**
 * The property every answer must have: no 5xx but the documented 503s (with
 * their problem document), and every 4xx a problem document whose `status`
 * is the HTTP status. Returns the problem document of an error answer.
 */
export function checkAnswer(category: string, call: HttpCall, a: HttpAnswer): Record<string, unknown> | undefined {
  const where = `${call.method} ${preview(call.path, 200)}`;
  if (a.status >= 500) {
    const { doc, error } = problemOf(a, call.method);
    const code = doc?.['code'];
    if (a.status !== 503 || error !== undefined || typeof code !== 'string' || !DOCUMENTED_503.has(code)) {
      throw new Violation(category, `${where} answered a 5xx: ${describeAnswer(a)}`);
    }
    return doc;
  }
  if (a.status >= 400) {
    const { doc, error } = problemOf(a, call.method);
    if (error !== undefined) throw new Violation(category, `${where}: ${error}; got ${describeAnswer(a)}`);
    return doc;
  }
  if (a.status < 100) throw new Violation(category, `${where} answered status ${String(a.status)}`);
  return undefined;
}

/** Describes a call for failure messages (a long Authorization value shortened). */
export const describeCall = (call: HttpCall): string => {
  const headers = Object.fromEntries(
    Object.entries(call.headers ?? {}).map(([k, v]) =>
      k.toLowerCase() === 'authorization' && v.length > 60
        ? [k, `${v.slice(0, 40)}…(${String(v.length)} chars)`]
        : [k, v],
    ),
  );
  return `${call.method} ${preview(call.path, 200)} headers=${preview(headers, 300)} body=${call.body === undefined ? '(none)' : preview(call.body.toString(), 300)}`;
};

/** The app still answers its liveness probe. */
export async function assertAlive(t: TestApp): Promise<void> {
  const res = await request(`${t.url}/health`, { dispatcher: agent });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`GET /health answered ${String(res.statusCode)} after the fuzz run`);
}
