import { describe, expect, it } from '@jest/globals';
import { redactToken } from './request-log.js';

describe('redactToken', () => {
  it.each([
    ['/events?access_token=abc.def.ghi', '/events?access_token=[redacted]'],
    ['/events?types=user.created&access_token=abc&x=1', '/events?types=user.created&access_token=[redacted]&x=1'],
    ['/users?limit=1', '/users?limit=1'],
  ])('%s', (url, logged) => {
    expect(redactToken(url)).toBe(logged);
  });
});
