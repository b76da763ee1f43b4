import { describe, expect, it } from '@jest/globals';
import { AppException } from '../common/errors/app.exception.js';
import { decodeCursor, encodeCursor } from './users.cursor.js';

describe('users cursor', () => {
  it('round-trips ids', () => {
    for (const id of [0, 1, 42, 2_147_483_647]) expect(decodeCursor(encodeCursor(id))).toBe(id);
  });

  it('is opaque (no plain id in it)', () => {
    expect(encodeCursor(12345)).not.toContain('12345');
  });

  it.each([
    '',
    '!!!',
    'Zm9v',
    Buffer.from('u1:').toString('base64url'),
    Buffer.from('u1:12a').toString('base64url'),
    Buffer.from('u1:99999999999').toString('base64url'),
    Buffer.from('u2:5').toString('base64url'),
    'x'.repeat(65),
  ])('rejects %p with invalid_cursor', (cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(AppException);
    try {
      decodeCursor(cursor);
    } catch (error) {
      expect((error as AppException).code).toBe('invalid_cursor');
      expect((error as AppException).status).toBe(400);
    }
  });
});
