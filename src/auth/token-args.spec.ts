import { describe, expect, it } from '@jest/globals';
import { parseTokenArgs, parseTtl, TokenUsageError } from './token-args.js';

describe('parseTokenArgs', () => {
  it('reads sub, name, scopes and ttl, with a one-hour default', () => {
    expect(parseTokenArgs(['--sub', '42'])).toEqual({
      sub: '42',
      name: undefined,
      scope: undefined,
      ttlS: 3600,
      help: false,
    });
    expect(
      parseTokenArgs(['--sub=7', '--name', ' Ada ', '--scope', ' users:write   admin ', '--ttl', '15m']),
    ).toMatchObject({ sub: '7', name: 'Ada', scope: 'users:write admin', ttlS: 900 });
  });

  it.each([
    [[], /--sub is required/],
    [['--sub', ''], /--sub is required/],
    [['--sub', 'x', '--scope', 'root'], /unknown scope root/],
    [['--sub', 'x', '--extra'], /Unknown option/],
    [['--sub', 'x', 'positional'], /positional/],
  ])('refuses %j', (args, message) => {
    expect(() => parseTokenArgs(args)).toThrow(TokenUsageError);
    expect(() => parseTokenArgs(args)).toThrow(message);
  });
});

describe('parseTtl', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['2m', 120],
    ['1h', 3600],
    ['30d', 2_592_000],
  ])('reads %s', (raw, seconds) => {
    expect(parseTtl(raw)).toBe(seconds);
  });

  it.each([['0'], ['31d'], ['1y'], ['-5'], ['1.5h'], ['']])('refuses %j', (raw) => {
    expect(() => parseTtl(raw)).toThrow(/--ttl must be/);
  });
});
