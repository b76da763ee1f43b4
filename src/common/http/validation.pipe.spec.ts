import { describe, expect, it } from '@jest/globals';
import { CreateUserDto } from '../../users/dto/create-user.dto.js';
import { AppException } from '../errors/app.exception.js';
import { createValidationPipe } from './validation.pipe.js';

const nested = (depth: number, open: string, close: string): unknown =>
  JSON.parse(`${open.repeat(depth)}${open === '[' ? '' : '1'}${close.repeat(depth)}`);

describe('body nesting depth', () => {
  it('answers a deeply nested body with a 400 validation problem, not a stack overflow', async () => {
    const pipe = createValidationPipe();
    const metadata = { type: 'body' as const, metatype: CreateUserDto, data: undefined };
    for (const body of [
      { name: nested(5_000, '[', ']'), email: 'a@b.co' },
      { name: 'Ada', email: 'a@b.co', extra: nested(5_000, '{"a":', '}') },
      { name: 'Ada', email: 'a@b.co', extra: nested(100_000, '[', ']') },
    ]) {
      const error = await pipe.transform(body, metadata).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AppException);
      expect(error).toMatchObject({ code: 'validation_failed', message: 'body is nested more than 32 levels deep' });
    }
    await expect(pipe.transform({ name: 'Ada', email: 'ada@example.org' }, metadata)).resolves.toMatchObject({
      name: 'Ada',
    });
  });
});
