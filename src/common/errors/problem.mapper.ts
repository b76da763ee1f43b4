import { HttpException } from '@nestjs/common';
import { isDatabaseUnavailable, isError } from '../../database/database.errors.js';
import {
  isBrokenCircuitError,
  isBulkheadRejectedError,
  isCancelledError,
  isRateLimitedError,
  isTimeoutError,
} from '../../resilience/resilience.errors.js';
import { AppException, type FieldError } from './app.exception.js';
import { ERROR_CODES, codeForStatus, problemType, type ErrorCode } from './error-codes.js';
import type { ProblemDocument } from './problem-document.js';

export interface MappedProblem {
  readonly problem: ProblemDocument;
  readonly headers: Readonly<Record<string, string>>;
  /** True when the error was not expected: log it (once) with the request id. */
  readonly unexpected: boolean;
}

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  message: string;
}

/** Fastify's own errors, by code; a fixed detail where Fastify's message would echo the whole input back. */
const FASTIFY_CODES: Readonly<Record<string, { code: ErrorCode; detail?: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'bad_request' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'uri_too_long', detail: 'A path segment is longer than 100 characters' },
  FST_ERR_BAD_URL: { code: 'bad_request', detail: 'The path is not a valid URL (bad percent-encoding)' },
};

function build(
  code: ErrorCode,
  detail: string | undefined,
  context: { instance: string; requestId: string },
  errors?: readonly FieldError[],
  status: number = ERROR_CODES[code].status,
): ProblemDocument {
  return {
    type: problemType(code),
    title: ERROR_CODES[code].title,
    status,
    ...(detail !== undefined ? { detail } : {}),
    instance: context.instance,
    code,
    requestId: context.requestId,
    ...(errors !== undefined && errors.length > 0 ? { errors } : {}),
  };
}

function httpExceptionDetail(exception: HttpException): string | undefined {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.filter((m) => typeof m === 'string').join('; ');
  return undefined;
}

function fastifyProblem(error: Error, context: { instance: string; requestId: string }): MappedProblem | undefined {
  const fastifyError = error as FastifyLikeError;
  const mapped = typeof fastifyError.code === 'string' ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped !== undefined) {
    return { problem: build(mapped.code, mapped.detail ?? error.message, context), headers: {}, unexpected: false };
  }
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return {
      problem: build('invalid_json', 'Request body is not valid JSON', context),
      headers: {},
      unexpected: false,
    };
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    const status = fastifyError.statusCode;
    return {
      problem: build(codeForStatus(status), error.message, context, undefined, status),
      headers: {},
      unexpected: false,
    };
  }
  return undefined;
}

const retryAfter = (ms: number): Record<string, string> => ({
  'retry-after': String(Math.max(1, Math.ceil(ms / 1000))),
});

/** The typed errors of the resilience policies, mapped once: 503, 504 or 429, with Retry-After. */
function resilienceProblem(
  error: unknown,
  context: { instance: string; requestId: string },
): MappedProblem | undefined {
  if (isRateLimitedError(error)) {
    return {
      problem: build('rate_limited', 'Too many requests; slow down and retry after the delay given', context),
      headers: retryAfter(error.retryAfterMs),
      unexpected: false,
    };
  }
  if (isBrokenCircuitError(error)) {
    return {
      problem: build(
        'dependency_unavailable',
        `The ${error.policy} dependency is failing; its circuit is open`,
        context,
      ),
      headers: retryAfter(error.retryAfterMs),
      unexpected: false,
    };
  }
  if (isBulkheadRejectedError(error)) {
    return {
      problem: build('overloaded', 'Too many requests of this kind are in progress', context),
      headers: retryAfter(error.retryAfterMs),
      unexpected: false,
    };
  }
  if (isTimeoutError(error)) {
    return {
      problem: build('gateway_timeout', 'The request did not finish within its deadline', context),
      headers: {},
      unexpected: false,
    };
  }
  if (isCancelledError(error)) {
    // The client went away; nobody reads this answer, but keep it a 4xx-class non-error.
    return {
      problem: build('client_closed_request', 'The request was cancelled', context),
      headers: {},
      unexpected: false,
    };
  }
  return undefined;
}

/**
 * Turns anything thrown while serving a request into an RFC 9457 problem
 * document. Known errors keep their detail; unknown ones become a bare 500
 * whose detail leaks nothing (no stack, SQL or connection string).
 */
export function mapToProblem(error: unknown, context: { instance: string; requestId: string }): MappedProblem {
  if (error instanceof AppException) {
    return {
      problem: build(error.code, error.message, context, error.errors),
      headers: error.headers,
      unexpected: false,
    };
  }
  if (error instanceof HttpException) {
    // Nest wraps Fastify's own client errors (bad JSON, body limit); keep their precise code.
    const fromFastify = isError(error.cause) ? fastifyProblem(error.cause, context) : undefined;
    if (fromFastify !== undefined) return fromFastify;
    const status = error.getStatus();
    const code = codeForStatus(status);
    if (status >= 500) {
      return { problem: build(code, undefined, context, undefined, status), headers: {}, unexpected: true };
    }
    return {
      problem: build(code, httpExceptionDetail(error), context, undefined, status),
      headers: {},
      unexpected: false,
    };
  }
  const resilience = resilienceProblem(error, context);
  if (resilience !== undefined) return resilience;
  if (isError(error)) {
    const fromFastify = fastifyProblem(error, context);
    if (fromFastify !== undefined) return fromFastify;
    if (isDatabaseUnavailable(error)) {
      return {
        problem: build('database_unavailable', 'The database did not answer; try again shortly', context),
        headers: { 'retry-after': '1' },
        unexpected: false,
      };
    }
  }
  return { problem: build('internal_error', undefined, context), headers: {}, unexpected: true };
}
