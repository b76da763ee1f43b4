import { describe, expect, it } from '@jest/globals';
import { AppException } from '../errors/app.exception.js';
import { ParseIdPipe } from './parse-id.pipe.js';

describe('ParseIdPipe', () => {
  const pipe = new ParseIdPipe('userId');

  it.each([
    ['1', 1],
    ['42', 42],
    ['2147483647', 2_147_483_647],
  ])('accepts the canonical decimal %s', (raw, id) => {
    expect(pipe.transform(raw)).toBe(id);
  });

  it.each([
    '0',
    '-1',
    '+1',
    '01',
    '0x10',
    '1e3',
    '1.0',
    ' 1',
    '1 ',
    '',
    '2147483648',
    '9'.repeat(5000),
    '١',
    '1\u0000',
  ])('refuses %j with a 400 naming the parameter', (raw) => {
    const error = (() => {
      try {
        pipe.transform(raw);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(AppException);
    expect(error).toMatchObject({ code: 'validation_failed', errors: [{ field: 'userId' }] });
  });

  it('refuses a value that is not a string (never trusts an earlier conversion)', () => {
    expect(() => pipe.transform(16)).toThrow(AppException);
  });
});
