import type { FieldError } from './app.exception.js';
import type { ErrorCode } from './error-codes.js';

/** RFC 9457 problem details, with this service's extension members. */
export interface ProblemDocument {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly instance?: string;
  readonly code: ErrorCode;
  readonly requestId?: string;
  readonly errors?: readonly FieldError[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
