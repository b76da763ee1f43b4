import { AppException } from '../common/errors/app.exception.js';
import { isDatabaseUnavailable } from './database.errors.js';

/** Maps driver errors that mean "try again later" to a 503 domain error; others pass through. */
export function translateUnavailable(error: unknown): unknown {
  if (isDatabaseUnavailable(error)) {
    return new AppException('database_unavailable', 'The database did not answer; try again shortly', {
      headers: { 'retry-after': '1' },
      cause: error,
    });
  }
  return error;
}
