import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException, type FieldError } from '../errors/app.exception.js';
import { findTextProblem } from '../text/text-rule.js';

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

/**
 * Before field validation: applies the text rule to every string of every body
 * and query (and bounds their nesting), and rejects DTO bodies that are not a
 * JSON object (arrays, strings, null). Path parameters are left to their own
 * pipes: the base class would turn `0x10` into 16 before `ParseIdPipe` saw it.
 */
class ProblemValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'param') return value;
    if (metadata.type === 'body' || metadata.type === 'query') {
      const problem = findTextProblem(value, metadata.type);
      if (problem !== undefined) {
        throw new AppException('validation_failed', problem.message, { errors: [problem] });
      }
    }
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
