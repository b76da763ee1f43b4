import type { HttpService } from '@nestjs/axios';
import type { AxiosAdapter } from 'axios';
import { firstValueFrom } from 'rxjs';
import { Pool } from 'undici';
import type { ResiliencePipeline } from '../resilience/pipeline.js';
import { undiciAxiosAdapter } from './undici-axios.adapter.js';
import type { UpstreamCall } from './upstream.port.js';

/** The upstream answered 2xx with a body that is not what the contract says. */
export class UpstreamContractError extends Error {
  override readonly name = 'UpstreamContractError';
}

/**
 * GETs JSON from one upstream: its own keep-alive agent (bounded sockets),
 * every call inside that upstream's resilience pipeline, carrying the
 * request's signal, its X-Request-Id, and the milliseconds left before the
 * deadline in X-Deadline-Ms so the upstream can give up too.
 */
export class HttpUpstreamClient {
  private readonly pool: Pool;
  private readonly adapter: AxiosAdapter;

  private readonly baseUrl: string;

  constructor(
    private readonly http: HttpService,
    private readonly pipeline: ResiliencePipeline,
    baseUrl: string,
    maxSockets: number,
  ) {
    // A trailing slash makes relative paths resolve under the base path, not beside it.
    this.baseUrl = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.pool = new Pool(new URL(this.baseUrl).origin, { connections: maxSockets, pipelining: 1 });
    this.adapter = undiciAxiosAdapter(this.pool);
  }

  async getArray<T>(path: string, call: UpstreamCall): Promise<T[]> {
    const url = new URL(path, this.baseUrl).toString();
    return this.pipeline.execute(async ({ signal }) => {
      const headers: Record<string, string> = {
        accept: 'application/json',
        'x-deadline-ms': String(Math.max(0, Math.round(call.deadlineAt - Date.now()))),
      };
      if (call.requestId !== undefined) headers['x-request-id'] = call.requestId;
      const response = await firstValueFrom(
        this.http.get<unknown>(url, {
          signal,
          headers,
          adapter: this.adapter,
          responseType: 'json',
          // Redirects to elsewhere are not part of the contract.
          maxRedirects: 0,
        }),
      );
      if (!Array.isArray(response.data)) throw new UpstreamContractError(`${url} did not answer a JSON array`);
      return response.data as T[];
    }, call.signal);
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
