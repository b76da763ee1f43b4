import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export interface AppExceptionOptions {
  readonly errors?: readonly FieldError[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

/**
 * A domain error with a code from the catalogue. Services throw these; the
 * problem-details filter is the only place they become HTTP.
 */
export class AppException extends Error {
  override readonly name = 'AppException';
  readonly status: number;
  readonly errors: readonly FieldError[] | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly code: ErrorCode,
    detail?: string,
    options: AppExceptionOptions = {},
  ) {
    super(detail ?? ERROR_CODES[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = ERROR_CODES[code].status;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
  }
}
