import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { ResiliencePipeline } from '../resilience/pipeline.js';
import type { UpstreamCall } from './upstream.port.js';

/** The upstream answered 2xx with a body that is not what the contract says. */
export class UpstreamContractError extends Error {
  override readonly name = 'UpstreamContractError';
}

/**
 * The upstream answered a status outside 2xx (redirects included: they are
 * not part of the contract). `status` and `headers` (Retry-After) are what
 * the retry classification (`classifyFailure`) and the breaker
 * (`countsAgainstDependency`) read: 502/503/504/429 are retried, other 4xx
 * are not and do not count against the dependency.
 */
export class UpstreamStatusError extends Error {
  override readonly name = 'UpstreamStatusError';

  constructor(
    readonly url: string,
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
  ) {
    super(`${url} answered ${String(status)}`);
  }
}

/** Pool counters of one upstream (undici's `PoolStats` subset worth watching). */
export interface UpstreamPoolStats {
  readonly connected: number;
  readonly free: number;
  readonly running: number;
  readonly pending: number;
}

/**
 * GETs JSON from one upstream on its own undici `Pool` (keep-alive,
 * `UPSTREAM_MAX_SOCKETS` connections, no pipelining, no redirects), every
 * call inside that upstream's resilience pipeline, carrying the request's
 * signal, its X-Request-Id, and the milliseconds left before the deadline in
 * X-Deadline-Ms so the upstream can give up too.
 *
 * An abort (attempt timeout, deadline, caller) makes undici destroy the
 * request's socket, so the upstream sees the request cut and no socket is
 * held by work nobody waits for; the body is read whole and parsed as JSON,
 * and must be an array.
 */
export class HttpUpstreamClient {
  private readonly pool: Pool;
  private readonly origin: string;
  /** The base URL's path, ending with a slash. */
  private readonly basePath: string;

  constructor(
    private readonly pipeline: ResiliencePipeline,
    baseUrl: string,
    maxSockets: number,
  ) {
    // A trailing slash makes relative paths resolve under the base path, not beside it.
    const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    this.origin = base.origin;
    this.basePath = base.pathname;
    this.pool = new Pool(this.origin, { connections: maxSockets, pipelining: 1 });
  }

  /**
   * @param path relative to the base URL, made of plain segments (`users/7/posts`):
   *   appended as it is, no URL parsing per call.
   */
  async getArray<T>(path: string, call: UpstreamCall): Promise<T[]> {
    const requestPath = `${this.basePath}${path}`;
    return this.pipeline.execute(
      async ({ signal }) => {
        const headers: Record<string, string> = {
          accept: 'application/json',
          'x-deadline-ms': String(Math.max(0, Math.round(call.deadlineAt - Date.now()))),
        };
        if (call.requestId !== undefined) headers['x-request-id'] = call.requestId;
        const res = await this.pool.request({ method: 'GET', path: requestPath, headers, signal });
        if (res.statusCode < 200 || res.statusCode >= 300) {
          // Read (at most undici's dump limit) so the socket can serve the next call.
          await res.body.dump();
          throw new UpstreamStatusError(`${this.origin}${requestPath}`, res.statusCode, res.headers);
        }
        const body: unknown = await res.body.json();
        if (!Array.isArray(body))
          throw new UpstreamContractError(`${this.origin}${requestPath} did not answer a JSON array`);
        return body as T[];
        // The round aborts its signal at deadlineAt: timeouts that could only fire later need no timer.
      },
      call.signal,
      { abortsAt: call.deadlineAt },
    );
  }

  stats(): UpstreamPoolStats {
    const { connected, free, running, pending } = this.pool.stats;
    return { connected, free, running, pending };
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
