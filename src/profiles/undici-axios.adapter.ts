import {
  AxiosError,
  AxiosHeaders,
  type AxiosAdapter,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import type { Dispatcher } from 'undici';

/**
 * An axios adapter that sends the request on an undici `Pool` (or any
 * dispatcher) instead of node:http: keep-alive and the socket bound come from
 * the pool, the config's `signal` aborts the request (undici destroys its
 * socket), the body is read whole and JSON-parsed for `responseType: 'json'`,
 * and a status outside `validateStatus` rejects with an `AxiosError` carrying
 * `response` (status, headers), as axios's own adapters do, so the retry
 * classification and the breaker see the usual shape. Redirects are never
 * followed (undici's pool has no redirect handling without an interceptor).
 */
export function undiciAxiosAdapter(pool: Dispatcher): AxiosAdapter {
  return async (config: InternalAxiosRequestConfig): Promise<AxiosResponse> => {
    const url = new URL(config.url ?? '', config.baseURL);
    const headers = config.headers.toJSON(true);
    const signal = config.signal as AbortSignal | undefined;
    let res: Dispatcher.ResponseData;
    try {
      res = await pool.request({
        origin: url.origin,
        method: (config.method ?? 'get').toUpperCase(),
        path: `${url.pathname}${url.search}`,
        headers,
        ...(signal !== undefined ? { signal } : {}),
      });
    } catch (error) {
      throw AxiosError.from(error, (error as { code?: string }).code, config);
    }
    const validate = config.validateStatus;
    const ok = validate === undefined || validate === null || validate(res.statusCode);
    let data: unknown;
    if (!ok) {
      await res.body.dump();
    } else if (config.responseType === 'json' || config.responseType === undefined) {
      const text = await res.body.text();
      data = text === '' ? undefined : JSON.parse(text);
    } else {
      data = await res.body.text();
    }
    const response: AxiosResponse = {
      data,
      status: res.statusCode,
      statusText: '',
      headers: new AxiosHeaders(res.headers as Record<string, string>),
      config,
    };
    if (!ok) {
      throw new AxiosError(
        `Request failed with status code ${String(res.statusCode)}`,
        res.statusCode >= 500 ? AxiosError.ERR_BAD_RESPONSE : AxiosError.ERR_BAD_REQUEST,
        config,
        undefined,
        response,
      );
    }
    return response;
  };
}
