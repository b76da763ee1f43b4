import type { PipeTransform } from '@nestjs/common';
import { AppException } from '../common/errors/app.exception.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Path ids that are UUIDs; anything else is a 400, never a query. Returns the canonical lower case. */
export class ParseUuidPipe implements PipeTransform<string, string> {
  constructor(private readonly field = 'id') {}

  transform(value: string): string {
    if (!UUID.test(value)) {
      throw new AppException('validation_failed', `The ${this.field} in the path must be a UUID`, {
        errors: [{ field: this.field, message: `${this.field} must be a UUID` }],
      });
    }
    return value.toLowerCase();
  }
}
