import { describe, expect, it } from '@jest/globals';
import { MAX_DEPTH, findTextProblem, textViolation } from './text-rule.js';

describe('textViolation', () => {
  it.each([
    ['NUL', 'a\u0000b', 'nul'],
    ['a lone high surrogate', 'a\ud800b', 'surrogate'],
    ['a lone high surrogate at the end', 'ab\ud83d', 'surrogate'],
    ['a lone low surrogate', '\udc00ab', 'surrogate'],
    ['two high surrogates', '\ud83d\ud83d\ude00', 'surrogate'],
    ['a C0 control (BEL)', 'ding\u0007', 'control'],
    ['escape (ANSI colour codes)', '\u001b[31mred', 'control'],
    ['vertical tab', 'a\u000bb', 'control'],
    ['form feed', 'a\u000cb', 'control'],
    ['DEL', 'a\u007fb', 'control'],
  ])('refuses %s', (_label, text, violation) => {
    expect(textViolation(text)).toBe(violation);
  });

  it.each([
    ['plain text', 'Ada Lovelace'],
    ['tab, line feed and carriage return', 'line one\r\n\tline two\n'],
    ['a surrogate pair (emoji)', 'hi \ud83d\ude00'],
    ['an emoji sequence with zero-width joiners', '\ud83d\udc69\u200d\ud83d\udcbb'],
    ['C1 controls and non-Latin scripts', '\u0085 Ωμέγα 日本語 עברית'],
    ['the empty string', ''],
  ])('accepts %s', (_label, text) => {
    expect(textViolation(text)).toBeUndefined();
  });
});

describe('findTextProblem', () => {
  it('names the field by its path, for nested objects and arrays', () => {
    expect(findTextProblem({ a: 'ok', items: [{ name: 'x' }, { name: 'bad\u0000' }] }, 'body')).toEqual({
      field: 'items.1.name',
      message: 'items.1.name must not contain NUL characters',
    });
  });

  it('reports the first offending field in the order sent', () => {
    expect(findTextProblem({ first: 'a\u0000', second: '\ud800' }, 'body')?.field).toBe('first');
  });

  it('names the root for a bare string (a query or body that is just text)', () => {
    expect(findTextProblem('\ud800', 'body')?.field).toBe('body');
  });

  it('ignores numbers, booleans and null, and passes clean values', () => {
    expect(findTextProblem({ n: 1, b: true, z: null, s: 'fine', list: [1, 'two'] }, 'query')).toBeUndefined();
  });

  it(`refuses nesting deeper than ${String(MAX_DEPTH)} levels without recursing`, () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findTextProblem(deep, 'body')?.message).toBe(`body is nested more than ${String(MAX_DEPTH)} levels deep`);

    let allowed: unknown = 'leaf';
    for (let i = 0; i < MAX_DEPTH; i++) allowed = { next: allowed };
    expect(findTextProblem(allowed, 'body')).toBeUndefined();
  });
});
