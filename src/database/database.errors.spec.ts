import { describe, expect, it } from '@jest/globals';
import { isDatabaseUnavailable, uniqueViolation } from './database.errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated unexpectedly'),
    withCode('terminating connection due to administrator command', '57P01'),
    withCode('the database system is starting up', '57P03'),
    withCode('canceling statement due to statement timeout', '57014'),
    withCode('too many connections', '53300'),
    Object.assign(new Error('query failed'), { driverError: withCode('x', '08006') }),
  ])('is true for %p', (error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    withCode('duplicate key', '23505'),
    withCode('syntax error', '42601'),
    new TypeError('x is undefined'),
    'str',
    undefined,
  ])('is false for %p', (error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('uniqueViolation', () => {
  it('finds the constraint on the error or its driver error', () => {
    expect(uniqueViolation(Object.assign(withCode('dup', '23505'), { constraint: 'users_email_lower_key' }))).toBe(
      'users_email_lower_key',
    );
    expect(uniqueViolation({ driverError: { code: '23505', constraint: 'c' } })).toBe('c');
    expect(uniqueViolation(withCode('other', '23503'))).toBeUndefined();
  });
});
