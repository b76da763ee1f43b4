import { types } from 'node:util';

/**
 * `instanceof Error` fails for errors made in another realm (Node's own
 * socket errors seen from a vm context, as under Jest); the native check does not.
 */
export const isError = (value: unknown): value is Error => value instanceof Error || types.isNativeError(value);

/**
 * Why the database cannot answer right now. Every one means "the same request
 * can succeed if sent again shortly", which is what a 503 with Retry-After says.
 */
export type UnavailableReason =
  /** Refused, reset, unreachable or lost: no usable connection. */
  | 'connection'
  /** The server is shutting down, restarting or starting up, or killed our backend. */
  | 'shutdown'
  /** The database refuses new sessions (`ALLOW_CONNECTIONS false`). */
  | 'not_accepting'
  /** Too many connections, out of memory, disk full. */
  | 'resources'
  /** A connect, pool checkout or statement did not finish in time. */
  | 'timeout'
  /** Lost a lock or serialization race; a retry is the documented remedy. */
  | 'contention'
  /** Connected to a read-only server (a standby after failover, or read-only for maintenance). */
  | 'read_only';

/**
 * SQLSTATEs that mean "try again", by exact code. Anything else of their
 * class stays a bug (500): e.g. 57P04 database_dropped is permanent, like
 * 3D000, and 53400 configuration_limit_exceeded (temp_file_limit) fails the
 * same query again.
 */
const SQLSTATE_REASONS: Readonly<Record<string, UnavailableReason>> = {
  '57014': 'timeout', // query_canceled: statement_timeout, or an operator's pg_cancel_backend
  '57P01': 'shutdown', // admin_shutdown: fast shutdown, or pg_terminate_backend
  '57P02': 'shutdown', // crash_shutdown: another backend crashed, the server restarts
  '57P03': 'shutdown', // cannot_connect_now: starting up, shutting down, in recovery
  '57P05': 'connection', // idle_session_timeout: the server closed a pooled idle session
  '25P03': 'connection', // idle_in_transaction_session_timeout: session closed
  '25006': 'read_only', // read_only_sql_transaction
  '55P03': 'contention', // lock_not_available: NOWAIT or lock_timeout
  '40001': 'contention', // serialization_failure
  '40P01': 'contention', // deadlock_detected
  '53000': 'resources', // insufficient_resources
  '53100': 'resources', // disk_full
  '53200': 'resources', // out_of_memory
  '53300': 'resources', // too_many_connections (for the server, a database or a role)
};

/** Node system error codes of a socket that could not connect or was lost. */
const NODE_CODE_REASONS: Readonly<Record<string, UnavailableReason>> = {
  ECONNREFUSED: 'connection',
  ECONNRESET: 'connection',
  ECONNABORTED: 'connection',
  EPIPE: 'connection',
  EHOSTUNREACH: 'connection',
  EHOSTDOWN: 'connection',
  ENETUNREACH: 'connection',
  ENETDOWN: 'connection',
  // DNS: a database host that is (re)starting in compose or Kubernetes has no address yet.
  ENOTFOUND: 'connection',
  EAI_AGAIN: 'connection',
  ETIMEDOUT: 'timeout',
};

/**
 * Errors pg, pg-pool and TypeORM raise as plain Errors with no code: only
 * their (English, driver-side) message tells them apart. Lower case; matched
 * as substrings, and only on links of the chain that carry no code.
 */
const MESSAGE_REASONS: readonly (readonly [string, UnavailableReason])[] = [
  // pg-pool: every connection busy for connectionTimeoutMillis.
  ['timeout exceeded when trying to connect', 'timeout'],
  // pg-pool: a new connection did not finish its handshake in time.
  ['connection terminated due to connection timeout', 'timeout'],
  // pg: the socket closed under a client (server gone, backend killed, PGlite-socket full).
  ['connection terminated', 'connection'],
  ['client has encountered a connection error and is not queryable', 'connection'],
  ['client was closed and is not queryable', 'connection'],
  // pg: query_timeout, the driver-side statement timer.
  ['query read timeout', 'timeout'],
  // This process is closing its pool (shutdown) while a request still wants it.
  ['cannot use a pool after calling end on the pool', 'shutdown'],
  // TypeORM: the DataSource was destroyed under a request.
  ['driver not connected', 'shutdown'],
];

/** How far the chain is followed; wrappers nest two or three deep at most. */
const MAX_LINKS = 8;

interface ErrorLike {
  code?: unknown;
  severity?: unknown;
  routine?: unknown;
  syscall?: unknown;
  message?: unknown;
  driverError?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The reason one link of the chain gives, if it gives one. */
function reasonOf(e: ErrorLike): UnavailableReason | undefined {
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined) {
    const known = SQLSTATE_REASONS[code] ?? NODE_CODE_REASONS[code];
    if (known !== undefined) return known;
    // connection_exception, the whole class: 08001 cannot connect, 08006 failure, and
    // PgBouncer's 08P01 "no more connections allowed" / "server login retry".
    if (/^08[0-9A-Z]{3}$/.test(code)) return 'connection';
    // object_not_in_prerequisite_state is a bug when a statement gets it (currval before
    // nextval), but at FATAL severity it is the server refusing the session: the database
    // does not accept connections. pg exposes only the localised severity, so the
    // routine that raises it (never localised) is checked too.
    if (code === '55000' && (isFatal(e.severity) || e.routine === 'CheckMyDatabase')) return 'not_accepting';
    // A Unix-socket connect to a server that is not running.
    if (code === 'ENOENT' && e.syscall === 'connect') return 'connection';
    return undefined;
  }
  if (typeof e.message !== 'string') return undefined;
  const message = e.message.toLowerCase();
  // pg's own connect timer, when it fires before pg-pool's (`stream.destroy(new Error('timeout expired'))`).
  if (message === 'timeout expired') return 'timeout';
  return MESSAGE_REASONS.find(([text]) => message.includes(text))?.[1];
}

const isFatal = (severity: unknown): boolean => severity === 'FATAL' || severity === 'PANIC';

/**
 * Why `error` means "the database cannot answer right now", or undefined when
 * it means something else (a bug, a constraint, a missing database, bad
 * credentials). Follows TypeORM's `driverError`, `cause` and AggregateError's
 * `errors` to the driver's own error.
 */
export function databaseUnavailableReason(error: unknown): UnavailableReason | undefined {
  const queue: unknown[] = [error];
  const seen = new Set<unknown>();
  while (queue.length > 0 && seen.size < MAX_LINKS) {
    const current = queue.shift();
    if (typeof current !== 'object' || current === null || seen.has(current)) continue;
    seen.add(current);
    const e = current as ErrorLike;
    const reason = reasonOf(e);
    if (reason !== undefined) return reason;
    queue.push(e.driverError, e.cause);
    if (Array.isArray(e.errors)) queue.push(...(e.errors as unknown[]));
  }
  return undefined;
}

/** True when an error means "the database cannot answer right now" (see {@link databaseUnavailableReason}). */
export function isDatabaseUnavailable(error: unknown): boolean {
  return databaseUnavailableReason(error) !== undefined;
}

/** SQLSTATE of a unique violation, and the constraint that failed. */
export function uniqueViolation(error: unknown): string | undefined {
  const e = error as { code?: unknown; constraint?: unknown; driverError?: { code?: unknown; constraint?: unknown } };
  const code = e.code ?? e.driverError?.code;
  if (code !== '23505') return undefined;
  const constraint = e.constraint ?? e.driverError?.constraint;
  return typeof constraint === 'string' ? constraint : '';
}
