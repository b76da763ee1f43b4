import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException, type FieldError } from '../errors/app.exception.js';
import { MAX_BODY_DEPTH, nestsDeeperThan } from './json-depth.js';

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

const tooDeep = () =>
  new AppException('validation_failed', `The body nests deeper than ${String(MAX_BODY_DEPTH)} levels`, {
    errors: [
      { field: 'body', message: `body must not nest arrays or objects deeper than ${String(MAX_BODY_DEPTH)} levels` },
    ],
  });

/**
 * Rejects bodies that are not a JSON object (arrays, strings, null), or that
 * nest too deeply for class-transformer's recursion, before field validation.
 */
class ProblemValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype !== undefined && this.toValidate(metadata)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw notAnObject();
      if (nestsDeeperThan(value, MAX_BODY_DEPTH)) throw tooDeep();
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
