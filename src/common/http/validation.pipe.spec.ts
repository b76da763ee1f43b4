import { describe, expect, it } from '@jest/globals';
import { CreateUserDto } from '../../users/dto/create-user.dto.js';
import { AppException } from '../errors/app.exception.js';
import { MAX_BODY_DEPTH, nestsDeeperThan } from './json-depth.js';
import { createValidationPipe } from './validation.pipe.js';

const nested = (depth: number, open: string, close: string): unknown =>
  JSON.parse(`${open.repeat(depth)}${open === '[' ? '' : '1'}${close.repeat(depth)}`);

describe('body nesting depth', () => {
  it('measures nesting without recursion, even 100,000 levels deep', () => {
    expect(nestsDeeperThan({ a: 1, b: [1, 2], c: { d: 'x' } }, 2)).toBe(false);
    expect(nestsDeeperThan({ c: { d: { e: 1 } } }, 2)).toBe(true);
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan(nested(100_000, '[', ']'), MAX_BODY_DEPTH)).toBe(true);
    expect(nestsDeeperThan(nested(100_000, '{"a":', '}'), MAX_BODY_DEPTH)).toBe(true);
  });

  it('answers a deeply nested body with a 400 validation problem, not a stack overflow', async () => {
    const pipe = createValidationPipe();
    const metadata = { type: 'body' as const, metatype: CreateUserDto, data: undefined };
    for (const body of [
      { name: nested(5_000, '[', ']'), email: 'a@b.co' },
      { name: 'Ada', email: 'a@b.co', extra: nested(5_000, '{"a":', '}') },
    ]) {
      const error = await pipe.transform(body, metadata).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AppException);
      expect(error).toMatchObject({ code: 'validation_failed' });
    }
    await expect(pipe.transform({ name: 'Ada', email: 'ada@example.org' }, metadata)).resolves.toMatchObject({
      name: 'Ada',
    });
  });
});
