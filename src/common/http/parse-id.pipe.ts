import type { PipeTransform } from '@nestjs/common';
import { AppException } from '../errors/app.exception.js';

const MAX_ID = 2_147_483_647;

/**
 * Path ids are positive 32-bit integers; anything else is a 400, never a
 * query. Not @Injectable on purpose: Nest then builds it with the default
 * field name, and routes with another parameter name pass `new ParseIdPipe('userId')`.
 */
export class ParseIdPipe implements PipeTransform<unknown, number> {
  constructor(private readonly field = 'id') {}

  transform(value: unknown): number {
    // Canonical decimal only: no sign, exponent, hex, leading zero or padding.
    const id = typeof value === 'string' && /^[1-9]\d{0,9}$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(id) || id < 1 || id > MAX_ID) {
      throw new AppException('validation_failed', `The ${this.field} in the path must be a positive integer`, {
        errors: [{ field: this.field, message: `${this.field} must be an integer between 1 and ${String(MAX_ID)}` }],
      });
    }
    return id;
  }
}
