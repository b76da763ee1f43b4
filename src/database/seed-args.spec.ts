import { describe, expect, it } from '@jest/globals';
import { DEFAULT_BATCH_SIZE, DEFAULT_USERS, parseSeedArgs, UsageError } from './seed-args.js';

describe('parseSeedArgs', () => {
  it('defaults to 1000 users in batches of 1000', () => {
    expect(parseSeedArgs([])).toEqual({ users: DEFAULT_USERS, batchSize: DEFAULT_BATCH_SIZE, help: false });
  });

  it.each([[['--users', '10000']], [['--users=10000']], [['-n', '10000']]])('reads %j', (argv) => {
    expect(parseSeedArgs(argv).users).toBe(10000);
  });

  it('reads --batch-size and --help', () => {
    expect(parseSeedArgs(['--batch-size', '500', '--help'])).toMatchObject({ batchSize: 500, help: true });
  });

  it.each([
    [['--users', 'abc'], '--users must be a whole number between 1 and 10000000 (got "abc")'],
    [['--users', '0'], '(got "0")'],
    [['--users', '-5'], '(got "-5")'],
    [['-n', '-5'], '(got "-5")'],
    [['--users', '1.5'], '(got "1.5")'],
    [['--users', '1e3'], '(got "1e3")'],
    [['--users', '99999999999'], '(got "99999999999")'],
    [['--users'], 'argument missing'],
    [['--users', '--batch-size', '5'], "Option '--users' needs a value"],
    [['--batch-size', '20000'], '--batch-size must be a whole number between 1 and 10000'],
    [['--nope'], "Unknown option '--nope'"],
    [['100'], "Unexpected argument '100'"],
  ])('rejects %j with one line', (argv, expected) => {
    let caught: unknown;
    try {
      parseSeedArgs(argv);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toContain(expected);
    expect((caught as Error).message).not.toContain('\n');
  });
});
