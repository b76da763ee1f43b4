import { describe, expect, it } from '@jest/globals';
import { plainToInstance } from 'class-transformer';
import { CanonicalInt } from './canonical-int.js';

class Query {
  @CanonicalInt()
  n?: unknown;
}

const parse = (n: unknown): unknown => plainToInstance(Query, { n }).n;

describe('CanonicalInt', () => {
  it.each([
    ['0', 0],
    ['16', 16],
    ['-3', -3],
    ['9007199254740991', 9_007_199_254_740_991],
  ])('turns the canonical decimal %s into a number', (raw, n) => {
    expect(parse(raw)).toBe(n);
  });

  it.each(['0x10', '1e3', '+16', '016', ' 16', '16 ', '1.0', '', '-0', '١٦', '99999999999999999'])(
    'leaves %j a string, for @IsInt() to refuse',
    (raw) => {
      expect(parse(raw)).toBe(raw);
    },
  );

  it('leaves non-strings (repeated query keys give arrays) alone', () => {
    expect(parse(['1', '2'])).toEqual(['1', '2']);
  });
});
