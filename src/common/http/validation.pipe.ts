import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException, type FieldError } from '../errors/app.exception.js';

function flatten(errors: readonly ValidationError[], prefix = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = prefix === '' ? e.property : `${prefix}.${e.property}`;
    const own = Object.values(e.constraints ?? {}).map((message) => ({
      field: field === '' ? 'body' : field,
      // class-validator's whitelist message reads "property x should not exist".
      message: message.replace(/^property (\S+) should not exist$/, '$1 is not an allowed field'),
    }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

const notAnObject = () =>
  new AppException('validation_failed', 'The body must be a JSON object', {
    errors: [{ field: 'body', message: 'body must be a JSON object' }],
  });

/** Rejects bodies that are not a JSON object (arrays, strings, null) before field validation. */
class ProblemValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype !== undefined && this.toValidate(metadata)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw notAnObject();
    }
    return super.transform(value, metadata);
  }
}

/**
 * Validates every body and query DTO: unknown fields and query parameters are
 * rejected, and failures become one 400 problem naming each offending field.
 */
export function createValidationPipe(): ValidationPipe {
  return new ProblemValidationPipe({
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const fields = flatten(errors);
      const list = fields.length > 0 ? fields : [{ field: 'body', message: 'body must be a JSON object' }];
      return new AppException('validation_failed', list.map((f) => f.message).join('; '), { errors: list });
    },
  });
}
