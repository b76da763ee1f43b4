import { AppException } from '../common/errors/app.exception.js';

// Opaque to clients: base64url of a versioned key, so the format can change.
const PREFIX = 'u1:';

export function encodeCursor(lastId: number): string {
  return Buffer.from(`${PREFIX}${String(lastId)}`, 'utf8').toString('base64url');
}

/** Returns the id to continue after, or throws a 400 invalid_cursor. */
export function decodeCursor(cursor: string): number {
  const decoded = /^[A-Za-z0-9_-]{1,64}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^u1:(\d{1,10})$/.exec(decoded);
  const id = match?.[1] === undefined ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(id) || id < 0 || id > 2_147_483_647) {
    throw new AppException('invalid_cursor', 'The cursor is not one this API returned', {
      errors: [{ field: 'cursor', message: 'cursor does not parse' }],
    });
  }
  return id;
}
