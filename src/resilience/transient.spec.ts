import { describe, expect, it } from '@jest/globals';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CancelledError,
  ConcurrencyLimitError,
  RateLimitedError,
  TimeoutError,
} from './resilience.errors.js';
import { classifyFailure, parseRetryAfter, TRANSIENT_NETWORK_CODES } from './transient.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');

const withCode = (code: string): Error => Object.assign(new Error(code), { code });
/** Shaped like an axios error: code next to a response. */
const axiosError = (status: number, headers: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(`Request failed with status code ${String(status)}`), {
    code: status >= 500 ? 'ERR_BAD_RESPONSE' : 'ERR_BAD_REQUEST',
    response: { status, headers },
  });

describe('classifyFailure', () => {
  it.each([
    'ECONNRESET',
    'ECONNREFUSED',
    'ECONNABORTED',
    'ETIMEDOUT',
    'EPIPE',
    'EAI_AGAIN',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
  ])('network error %s is transient', (code) => {
    expect(TRANSIENT_NETWORK_CODES.has(code)).toBe(true);
    expect(classifyFailure(withCode(code))).toEqual({ transient: true });
  });

  it.each(['ENOTFOUND', 'EACCES', 'ERR_INVALID_URL', 'ERR_BAD_REQUEST'])('code %s is not transient', (code) => {
    expect(classifyFailure(withCode(code))).toEqual({ transient: false });
  });

  it("finds the code on undici's wrapped cause and inside an AggregateError", () => {
    const fetchFailed = new TypeError('fetch failed', { cause: withCode('UND_ERR_CONNECT_TIMEOUT') });
    expect(classifyFailure(fetchFailed).transient).toBe(true);
    const deeper = new Error('outer', { cause: new Error('middle', { cause: withCode('ECONNREFUSED') }) });
    expect(classifyFailure(deeper).transient).toBe(true);
    const happyEyeballs = new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'connect');
    expect(classifyFailure(happyEyeballs).transient).toBe(true);
    expect(classifyFailure(new TypeError('fetch failed', { cause: new Error('no code') })).transient).toBe(false);
  });

  it('follows a cyclic cause chain only so far', () => {
    const a: Error & { cause?: unknown } = new Error('a');
    a.cause = new Error('b', { cause: a });
    expect(classifyFailure(a)).toEqual({ transient: false });
  });

  it('an attempt timeout is transient; a deadline timeout is not', () => {
    expect(classifyFailure(new TimeoutError('users', 500, 'attempt'))).toEqual({ transient: true });
    expect(classifyFailure(new TimeoutError('users', 5_000, 'deadline'))).toEqual({ transient: false });
  });

  it.each([
    ['CancelledError', new CancelledError('users', 'client gone')],
    ['BrokenCircuitError', new BrokenCircuitError('users', 1_000)],
    ['BulkheadRejectedError', new BulkheadRejectedError('users', 'full', 10)],
    ['ConcurrencyLimitError', new ConcurrencyLimitError('users', 8, 40)],
    ['RateLimitedError', new RateLimitedError('users', 10)],
    ['AbortError', new DOMException('This operation was aborted', 'AbortError')],
  ])("%s (another policy's or the caller's decision) is not transient", (_, error) => {
    expect(classifyFailure(error)).toEqual({ transient: false });
  });

  it.each([502, 503, 504, 429])('status %d is transient wherever it is carried', (status) => {
    expect(classifyFailure(axiosError(status)).transient).toBe(true);
    expect(classifyFailure(Object.assign(new Error('http'), { status })).transient).toBe(true);
    expect(classifyFailure(Object.assign(new Error('http'), { statusCode: status })).transient).toBe(true);
  });

  it.each([400, 401, 403, 404, 408, 409, 422, 500, 501, 505])('status %d is not transient', (status) => {
    expect(classifyFailure(axiosError(status))).toEqual({ transient: false });
    expect(classifyFailure({ statusCode: status })).toEqual({ transient: false });
  });

  it('a status decides over a network code next to it', () => {
    expect(classifyFailure(Object.assign(withCode('ECONNRESET'), { status: 400 })).transient).toBe(false);
  });

  it('ignores status fields that are not HTTP statuses', () => {
    expect(classifyFailure({ status: 'error', code: 'ECONNRESET' }).transient).toBe(true);
    expect(classifyFailure({ status: 'error' }).transient).toBe(false);
  });

  it('reads Retry-After delta-seconds on 429 and 503', () => {
    expect(classifyFailure(axiosError(429, { 'retry-after': '2' }), NOW)).toEqual({
      transient: true,
      retryAfterMs: 2_000,
    });
    expect(classifyFailure(axiosError(503, { 'retry-after': '0' }), NOW)).toEqual({ transient: true, retryAfterMs: 0 });
    expect(classifyFailure({ status: 429, headers: { 'retry-after': '7' } }, NOW)).toEqual({
      transient: true,
      retryAfterMs: 7_000,
    });
  });

  it('reads a Retry-After HTTP-date relative to now', () => {
    const error = axiosError(503, { 'retry-after': 'Tue, 01 Jan 2030 00:00:05 GMT' });
    expect(classifyFailure(error, NOW)).toEqual({ transient: true, retryAfterMs: 5_000 });
    expect(classifyFailure(error, NOW + 5_000)).toEqual({ transient: true, retryAfterMs: 0 });
    expect(classifyFailure(error, NOW + 60_000)).toEqual({ transient: true, retryAfterMs: 0 });
  });

  it('reads Retry-After from a Fetch Headers object and from retryAfterMs, which wins', () => {
    const headers = new Headers({ 'Retry-After': '3' });
    expect(classifyFailure({ response: { status: 429, headers } }, NOW).retryAfterMs).toBe(3_000);
    const both = Object.assign(axiosError(429, { 'retry-after': '3' }), { retryAfterMs: 1_250 });
    expect(classifyFailure(both, NOW).retryAfterMs).toBe(1_250);
  });

  it('ignores Retry-After on other transient statuses and garbage values', () => {
    expect(classifyFailure(axiosError(502, { 'retry-after': '5' }), NOW)).toEqual({ transient: true });
    expect(classifyFailure(axiosError(429, { 'retry-after': 'soon' }), NOW)).toEqual({ transient: true });
    expect(classifyFailure(axiosError(429, { 'retry-after': '-1' }), NOW)).toEqual({ transient: true });
  });

  it.each([undefined, null, 'ECONNRESET', 42, new Error('boom'), {}])(
    'unknown failure %p is not transient',
    (error) => {
      expect(classifyFailure(error)).toEqual({ transient: false });
    },
  );
});

describe('parseRetryAfter', () => {
  it.each<[unknown, number | undefined]>([
    ['120', 120_000],
    [' 3 ', 3_000],
    ['1.5', 1_500],
    [4, 4_000],
    [['2', '9'], 2_000],
    ['Tue, 01 Jan 2030 00:01:00 GMT', 60_000],
    ['Monday, 31-Dec-29 23:59:00 GMT', 0],
    ['', undefined],
    ['-5', undefined],
    ['1e3', undefined],
    ['tomorrow-ish', undefined],
    [null, undefined],
    [Number.NaN, undefined],
  ])('%p -> %p', (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });
});
