import {
  isBrokenCircuitError,
  isBulkheadRejectedError,
  isCancelledError,
  isConcurrencyLimitError,
  isRateLimitedError,
  isTimeoutError,
} from './resilience.errors.js';

/**
 * Whether a failure may go away on its own (so retrying can help) and, when
 * the server said so, how long to wait first.
 *
 * @publicApi
 */
export interface FailureClassification {
  readonly transient: boolean;
  /** Wait the server asked for (Retry-After), in ms; only set for transient failures. */
  readonly retryAfterMs?: number;
}

/**
 * Error codes of connection-level failures: the request never got an answer
 * because the network or the peer's socket failed, which is typically brief.
 *
 * ENOTFOUND is deliberately absent: it is an authoritative "no such name"
 * (NXDOMAIN), usually a misconfigured host, and resolvers cache the negative
 * answer, so retrying within a request's time frame gets the same result.
 * A resolver that could not answer (a real transient DNS failure) reports
 * EAI_AGAIN, which is retried.
 */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Statuses where the server (or a gateway in front of it) was momentarily unable, not unwilling. */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** RFC 9110 §10.2.3: Retry-After accompanies 503 and 429 (and redirects, which are not failures). */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

const NOT_TRANSIENT: FailureClassification = { transient: false };
const TRANSIENT: FailureClassification = { transient: true };

/** How deep to follow `cause` chains: fetch wraps the socket error in `TypeError('fetch failed')`. */
const MAX_CAUSE_DEPTH = 5;

/**
 * The default retry classifier. Transient:
 * - network errors (`code` in {@link TRANSIENT_NETWORK_CODES}, also found on a
 *   `cause`, as undici's `fetch failed` wraps them, or inside an AggregateError);
 * - a `TimeoutError` of scope `attempt` (one try was slow, the next may not be);
 * - HTTP-like errors with status 502, 503, 504 or 429, reading the status from
 *   `status`, `statusCode` or `response.status` (axios); for 429 and 503 the
 *   server's Retry-After is returned as `retryAfterMs`.
 *
 * Not transient: every other status (other 4xx are the caller's fault and
 * will fail again; 500 is usually a bug on the server and retrying multiplies
 * load on it), a `TimeoutError` of scope `deadline` (no time is left), the
 * caller's cancellation, and the rejections of the other policies (open
 * circuit, full bulkhead, concurrency limit, rate limit): retrying those from
 * here would just hammer a protection that already said no. Unknown errors
 * are not transient.
 *
 * @param nowMs wall-clock time used to turn an HTTP-date Retry-After into a delay.
 * @example
 * classifyFailure(Object.assign(new Error('reset'), { code: 'ECONNRESET' })); // { transient: true }
 * classifyFailure({ response: { status: 429, headers: { 'retry-after': '2' } } }); // { transient: true, retryAfterMs: 2000 }
 * @publicApi
 */
export function classifyFailure(error: unknown, nowMs: number = Date.now()): FailureClassification {
  if (!isObject(error)) return NOT_TRANSIENT;

  if (isTimeoutError(error)) return error.scope === 'attempt' ? TRANSIENT : NOT_TRANSIENT;
  if (
    isCancelledError(error) ||
    isBrokenCircuitError(error) ||
    isBulkheadRejectedError(error) ||
    isConcurrencyLimitError(error) ||
    isRateLimitedError(error) ||
    isAbortError(error)
  ) {
    return NOT_TRANSIENT;
  }

  // A response decides over any code: axios sets `code: 'ERR_BAD_RESPONSE'` next to it.
  const status = statusOf(error);
  if (status !== undefined) {
    if (!TRANSIENT_STATUSES.has(status)) return NOT_TRANSIENT;
    if (!RETRY_AFTER_STATUSES.has(status)) return TRANSIENT;
    const retryAfterMs = retryAfterOf(error, nowMs);
    return retryAfterMs === undefined ? TRANSIENT : { transient: true, retryAfterMs };
  }

  return hasNetworkCode(error, 0) ? TRANSIENT : NOT_TRANSIENT;
}

/**
 * Parses a Retry-After value into milliseconds: delta-seconds (`"120"`) or an
 * HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, measured from `nowMs`; a date
 * in the past means 0). Returns undefined for anything unparseable.
 *
 * @example
 * parseRetryAfter('3'); // 3000
 * @publicApi
 */
export function parseRetryAfter(value: unknown, nowMs: number = Date.now()): number | undefined {
  if (Array.isArray(value)) return parseRetryAfter(value[0], nowMs);
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.ceil(value * 1000) : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  // delta-seconds is digits only (RFC 9110); fractions are tolerated. Numbers must never reach
  // Date.parse, which reads "1.5" as a date in 2001.
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

type Bag = Record<string, unknown>;

const isObject = (value: unknown): value is Bag => typeof value === 'object' && value !== null;

/** DOMException('AbortError') from an aborted fetch or stream: someone chose to stop. */
const isAbortError = (error: Bag): boolean => error['name'] === 'AbortError';

const asStatus = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isInteger(value) && value >= 100 && value <= 599 ? value : undefined;

function statusOf(error: Bag): number | undefined {
  const response = error['response'];
  return (
    asStatus(error['status']) ??
    asStatus(error['statusCode']) ??
    (isObject(response) ? (asStatus(response['status']) ?? asStatus(response['statusCode'])) : undefined)
  );
}

function retryAfterOf(error: Bag, nowMs: number): number | undefined {
  // A client that already parsed the header (ours, or a wrapper) hands over milliseconds.
  const explicit = error['retryAfterMs'];
  if (typeof explicit === 'number' && Number.isFinite(explicit) && explicit >= 0) return explicit;
  const response = error['response'];
  const fromResponse = isObject(response) ? headerOf(response['headers']) : undefined;
  return parseRetryAfter(fromResponse ?? headerOf(error['headers']), nowMs);
}

/** Reads Retry-After from a plain header object (Node, axios) or a Fetch `Headers`. */
function headerOf(headers: unknown): unknown {
  if (!isObject(headers)) return undefined;
  const get = headers['get'];
  if (typeof get === 'function') {
    const value: unknown = get.call(headers, 'retry-after');
    if (value !== undefined && value !== null) return value;
  }
  return headers['retry-after'] ?? headers['Retry-After'];
}

function hasNetworkCode(error: Bag, depth: number): boolean {
  const code = error['code'];
  if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return true;
  if (depth >= MAX_CAUSE_DEPTH) return false;
  // Happy-eyeballs connects fail with an AggregateError of per-address errors.
  const errors = error['errors'];
  if (Array.isArray(errors) && errors.some((inner) => isObject(inner) && hasNetworkCode(inner, depth + 1))) {
    return true;
  }
  const cause = error['cause'];
  return isObject(cause) && hasNetworkCode(cause, depth + 1);
}
