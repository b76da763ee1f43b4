/**
 * Hostile input for the fuzz tier (http.fuzz.spec.ts, chat.fuzz.spec.ts):
 * strings, numbers, JSON documents (as text, so prototype keys, duplicate keys
 * and number tokens such as 1e400 reach the server verbatim), ids, query
 * strings, header values and content types.
 */
import fc from 'fast-check';

// ---------------------------------------------------------------- printing

/** Long values print shortened in counterexamples (a 5000-deep array is not worth reading). */
export function preview(value: unknown, max = 300): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : fc.stringify(value);
  return text.length <= max ? text : `${text.slice(0, max)}…(${String(text.length)} chars)`;
}

/** Attaches a short, readable form for fast-check's counterexample report. */
export function printable<T extends object>(value: T, describe: (v: T) => string): T {
  return Object.defineProperty(value, fc.toStringMethod, { value: () => describe(value), enumerable: false });
}

// ---------------------------------------------------------------- strings

export const NUL = '\u0000';
export const LONE_HIGH = '\ud800';
export const LONE_LOW = '\udc00';

/** True when the string holds a NUL or a UTF-16 surrogate without its pair. */
export function hasNulOrLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return true;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return true;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/** Keys that mean something to JavaScript objects. */
export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'isPrototypeOf',
] as const;

const CONTROL_CHARS = [
  ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)),
  '\u007f',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\u200b',
  '\u202e',
  '\ufeff',
  '\ufffe',
  '\uffff',
];

/** Short atoms that have broken parsers, validators and databases before. */
export const STRING_ATOMS = [
  '',
  ' ',
  '  \t ',
  'a',
  'null',
  'undefined',
  'true',
  'false',
  '[]',
  '{}',
  '0',
  '-0',
  '1',
  '-1',
  '+1',
  '1.5',
  '1e3',
  '1e308',
  '1e400',
  '0x10',
  '0b1',
  '0o7',
  'NaN',
  'Infinity',
  '-Infinity',
  '9007199254740993',
  '%00',
  '%zz',
  '%',
  '../../../etc/passwd',
  '..%2f..%2f',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  '${7*7}',
  '{{7*7}}',
  '\\',
  '\\u0000',
  '"',
  'é',
  'e\u0301',
  '😀',
  '👨‍👩‍👧',
  '١٢٣',
  '１２３',
  'Ⅻ',
  'İ',
  'ß',
  NUL,
  `a${NUL}b`,
  LONE_HIGH,
  LONE_LOW,
  `x${LONE_HIGH}y`,
  `${LONE_LOW}${LONE_HIGH}`,
  ...PROTOTYPE_KEYS,
  ...CONTROL_CHARS,
] as const;

/** Any code unit, including lone surrogates and NUL. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

const longString = fc
  .tuple(fc.constantFrom(101, 129, 255, 256, 1_000, 2_001, 10_000, 100_001), fc.constantFrom('a', '1', 'é', '😀', NUL))
  .map(([n, c]) => c.repeat(n));

/** Strings that are hostile on their own. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...STRING_ATOMS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: codeUnit, maxLength: 20 }) },
  {
    weight: 2,
    arbitrary: fc.array(fc.constantFrom(...STRING_ATOMS), { minLength: 2, maxLength: 5 }).map((a) => a.join('')),
  },
  { weight: 1, arbitrary: longString },
);

/** A valid value with a hostile atom spliced in (keeps the rest of the value plausible, so validation gets further). */
export const spliced = (valid: string): fc.Arbitrary<string> =>
  fc
    .tuple(fc.nat({ max: valid.length }), fc.constantFrom(...STRING_ATOMS, NUL, LONE_HIGH, LONE_LOW))
    .map(([at, atom]) => valid.slice(0, at) + atom + valid.slice(at));

/** Strings that hold a NUL or an unpaired surrogate somewhere, possibly inside an otherwise valid value. */
export const nulOrSurrogateIn = (valid: string): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.nat({ max: valid.length }),
      fc.constantFrom(NUL, LONE_HIGH, LONE_LOW, `${NUL}${NUL}`, `${LONE_LOW}${LONE_HIGH}`, `a${NUL}`),
    )
    .map(([at, atom]) => valid.slice(0, at) + atom + valid.slice(at));

// ---------------------------------------------------------------- numbers

/** Number tokens as JSON text: some are out of double range, some lose precision. */
export const NUMBER_TOKENS = [
  '0',
  '-0',
  '0.0',
  '1',
  '-1',
  '1.5',
  '0.1e1',
  '1E2',
  '1e308',
  '-1e308',
  '1e309',
  '-1e309',
  '1e-400',
  '5e-324',
  '1.7976931348623157e308',
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '-9007199254740993',
  '2147483647',
  '2147483648',
  '4294967296',
  '-2147483649',
  '123456789012345678901234567890',
  '1'.repeat(400),
  `0.${'0'.repeat(400)}1`,
] as const;

export const hostileNumberToken: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NUMBER_TOKENS) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String) },
);

// ---------------------------------------------------------------- JSON as text

/**
 * A JSON document as a tree serialised by hand: object keys may repeat and be
 * `__proto__`, number tokens stay verbatim, strings may carry NUL or lone
 * surrogates (written as \u escapes, which every JSON parser turns back into them).
 */
export type Json =
  | { readonly t: 'raw'; readonly text: string }
  | { readonly t: 'str'; readonly value: string }
  | { readonly t: 'arr'; readonly items: readonly Json[] }
  | { readonly t: 'obj'; readonly entries: readonly (readonly [string, Json])[] }
  | { readonly t: 'deep'; readonly open: '[' | '{"a":' | '{"__proto__":'; readonly depth: number };

export const raw = (text: string): Json => ({ t: 'raw', text });
export const str = (value: string): Json => ({ t: 'str', value });
export const arr = (items: readonly Json[]): Json => ({ t: 'arr', items });
export const obj = (entries: readonly (readonly [string, Json])[]): Json => ({ t: 'obj', entries });
/** A plain JavaScript value as a Json tree (for valid templates). */
export function fromValue(value: unknown): Json {
  if (typeof value === 'string') return str(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return raw(JSON.stringify(value));
  if (Array.isArray(value)) return arr(value.map(fromValue));
  if (typeof value === 'object') return obj(Object.entries(value).map(([k, v]) => [k, fromValue(v)] as const));
  throw new Error(`not JSON: ${typeof value}`);
}

export function serialize(json: Json): string {
  switch (json.t) {
    case 'raw':
      return json.text;
    case 'str':
      return JSON.stringify(json.value);
    case 'arr':
      return `[${json.items.map(serialize).join(',')}]`;
    case 'obj':
      return `{${json.entries.map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`).join(',')}}`;
    case 'deep': {
      const close = json.open === '[' ? ']' : '}';
      return `${json.open.repeat(json.depth)}${json.open === '[' ? '' : '1'}${close.repeat(json.depth)}`;
    }
  }
}

/** Whether a NUL or a lone surrogate appears in any string or key of the tree. */
export function jsonHasNulOrLoneSurrogate(json: Json): boolean {
  switch (json.t) {
    case 'str':
      return hasNulOrLoneSurrogate(json.value);
    case 'arr':
      return json.items.some(jsonHasNulOrLoneSurrogate);
    case 'obj':
      return json.entries.some(([k, v]) => hasNulOrLoneSurrogate(k) || jsonHasNulOrLoneSurrogate(v));
    case 'raw':
    case 'deep':
      return false;
  }
}

export const deepJson: fc.Arbitrary<Json> = fc.record({
  t: fc.constant('deep' as const),
  open: fc.constantFrom('[' as const, '{"a":' as const, '{"__proto__":' as const),
  depth: fc.constantFrom(64, 1_000, 5_000, 20_000),
});

const jsonKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...PROTOTYPE_KEYS) },
  { weight: 1, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** Any JSON value, hostile in every leaf, with nesting and prototype keys. */
export const hostileJson: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 3, arbitrary: hostileString.map(str) },
    { weight: 2, arbitrary: hostileNumberToken.map(raw) },
    { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null').map(raw) },
    { weight: 1, arbitrary: fc.array(tie('json'), { maxLength: 4 }).map(arr) },
    { weight: 1, arbitrary: fc.array(fc.tuple(jsonKey, tie('json')), { maxLength: 4 }).map(obj) },
    { weight: 1, arbitrary: deepJson },
  ),
})).json;

/** Texts that are not JSON at all, or only nearly. */
export const NOT_JSON_TEXTS = [
  '',
  ' ',
  '{',
  '}',
  '[',
  '{"a":}',
  '{"a":1,}',
  '[1,]',
  "{'a':1}",
  '{a:1}',
  '{"a":1}{"b":2}',
  '{"a":1} trailing',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":-Infinity}',
  '{"a":undefined}',
  '{"a":0x10}',
  '{"a":01}',
  '{"a":.5}',
  '{"a":+1}',
  '{"a":"\\x41"}',
  '{"a":"\\u12"}',
  '{"a":"\\ud800"}',
  '{"a":"\u0000"}',
  '{"a":"line\nbreak"}',
  '// comment\n{}',
  '/* c */ {}',
  '\ufeff{}',
  'null',
  'true',
  '0',
  '"string"',
  '[]',
  '[{}]',
  'undefined',
] as const;

/** A body that is JSON or nearly, as text. */
export const notJsonText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...NOT_JSON_TEXTS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  hostileJson.map(serialize).map((s) => s.slice(0, Math.max(0, s.length - 1))),
);

/**
 * Bodies for a route whose valid body is `template`: wrong shapes, one field
 * replaced by a hostile value, a valid string with an atom spliced in, extra
 * (prototype) keys, missing fields, repeated keys.
 */
export function bodyFor(template: Readonly<Record<string, unknown>>): fc.Arbitrary<Json> {
  const fields = Object.keys(template);
  const base = Object.entries(template).map(([k, v]) => [k, fromValue(v)] as const);
  const stringFields = fields.filter((k) => typeof template[k] === 'string');
  const replaceOne = fc
    .tuple(fc.constantFrom(...fields), hostileJson)
    .map(([field, value]) => obj(base.map(([k, v]) => [k, k === field ? value : v] as const)));
  const spliceOne =
    stringFields.length === 0
      ? replaceOne
      : fc
          .constantFrom(...stringFields)
          .chain((field) =>
            spliced(template[field] as string).map((value) =>
              obj(base.map(([k, v]) => [k, k === field ? str(value) : v] as const)),
            ),
          );
  const extraKeys = fc
    .array(fc.tuple(jsonKey, hostileJson), { minLength: 1, maxLength: 3 })
    .map((extra) => obj([...base, ...extra]));
  const dropSome = fc.subarray(base).map((entries) => obj(entries));
  const repeated = fc
    .tuple(fc.constantFrom(...fields), hostileJson)
    .map(([field, value]) => obj([...base, [field, value] as const]));
  return fc.oneof(
    { weight: 2, arbitrary: hostileJson },
    { weight: 4, arbitrary: replaceOne },
    { weight: 3, arbitrary: spliceOne },
    { weight: 2, arbitrary: extraKeys },
    { weight: 1, arbitrary: dropSome },
    { weight: 1, arbitrary: repeated },
    { weight: 1, arbitrary: fc.constant(obj(base)) },
  );
}

// ---------------------------------------------------------------- ids

/** Path ids, as they appear in the URL (already percent-encoded where needed). */
export const ID_ATOMS = [
  '1',
  '2',
  '3',
  '007',
  '0',
  '00',
  '-0',
  '-1',
  '+1',
  '0x10',
  '0X1A',
  '0b11',
  '0o7',
  '1e3',
  '1E1',
  '1.0',
  '1.5',
  '.5',
  '1_000',
  '1,2',
  '1;2',
  '%201',
  '1%20',
  '%00',
  '1%00',
  '%2F',
  '%2e%2e',
  '%zz',
  '%',
  '%E2%80%8B1',
  '%D9%A1%D9%A2',
  '%EF%BC%91',
  'Infinity',
  'NaN',
  'null',
  'true',
  '__proto__',
  'constructor',
  'prototype',
  '2147483647',
  '2147483648',
  '4294967297',
  '9007199254740993',
  '9'.repeat(10),
  '1'.repeat(11),
  '1'.repeat(100),
  '1'.repeat(101),
  '1'.repeat(5_000),
] as const;

export const pathId: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ID_ATOMS) },
  { weight: 1, arbitrary: fc.integer({ min: -10, max: 2_147_483_647 }).map(String) },
  { weight: 2, arbitrary: hostileString.map((s) => encodePathSegment(s)) },
);

/**
 * Percent-encodes every byte but the unreserved ones. Lone surrogates are
 * written as their WTF-8 bytes (%ED%A0%80 for U+D800), so they reach the
 * server as such instead of becoming U+FFFD on the way.
 */
export function encodePathSegment(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    const bytes =
      c >= 0xd800 && c <= 0xdfff
        ? [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        : [...Buffer.from(ch, 'utf8')];
    for (const b of bytes) {
      const char = String.fromCharCode(b);
      out += /[A-Za-z0-9\-._~]/.test(char) ? char : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/** The id the route's pipe accepts (`/^\d{1,10}$/`, 1..2^31-1), after percent-decoding; undefined when it must be a 400. */
export function acceptedId(encoded: string): number | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  // Canonical decimal only: no sign, exponent, hex, padding or leading zero (so 007 is refused).
  if (!/^[1-9]\d{0,9}$/.test(decoded)) return undefined;
  const n = Number(decoded);
  return n >= 1 && n <= 2_147_483_647 ? n : undefined;
}

export const UUID_ATOMS = [
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '3F2504E0-4F89-11D3-9A0C-0305E82C3301',
  '{3f2504e0-4f89-11d3-9a0c-0305e82c3301}',
  '3f2504e04f8911d39a0c0305e82c3301',
  '3f2504e0-4f89-11d3-9a0c-0305e82c330',
  '3f2504e0-4f89-11d3-9a0c-0305e82c3301%00',
  'urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301',
] as const;

export const uuidId: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  fc.constantFrom(...UUID_ATOMS),
  fc.constantFrom(...ID_ATOMS),
  hostileString.map(encodePathSegment),
);

// ---------------------------------------------------------------- queries

/** A query parameter value as sent: sometimes percent-encoded, sometimes raw (malformed escapes stay malformed). */
const queryValue = (known: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 3, arbitrary: hostileString.map(encodePathSegment) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('%zz', '%', '%0', '%00', '%C0%80', '%ED%A0%80', '%FF', '+', '%2B1', '&', '='),
    },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(10_000), '1'.repeat(10_000), '%41'.repeat(3_000)) },
  );

const queryKey = (known: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: fc.constantFrom(...known).map((k) => `${k}[]`) },
    { weight: 1, arbitrary: fc.constantFrom(...known).map((k) => `${k}[0]`) },
    { weight: 2, arbitrary: fc.constantFrom(...PROTOTYPE_KEYS, '__proto__[x]', 'constructor[prototype][x]') },
    { weight: 1, arbitrary: hostileString.map(encodePathSegment) },
  );

/**
 * A query string (without `?`) for a route whose parameters are `keys` with
 * plausible values `values`: repeated keys, array syntax, prototype keys,
 * malformed escapes, and very long ones.
 */
export function queryFor(keys: readonly string[], values: readonly string[]): fc.Arbitrary<string> {
  const k = keys.length === 0 ? ['q'] : keys;
  const v = values.length === 0 ? ['1'] : values;
  const pairs = fc
    .array(fc.tuple(queryKey(k), fc.option(queryValue(v), { nil: undefined })), { maxLength: 5 })
    .map((ps) => ps.map(([key, value]) => (value === undefined ? key : `${key}=${value}`)).join('&'));
  return fc.oneof(
    { weight: 6, arbitrary: pairs },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', '&', '&&&', '=', '==', '?', '#', 'a=1&a=2&a=3', '%zz=1', 'a='.repeat(2_000)),
    },
    { weight: 1, arbitrary: fc.nat({ max: 3 }).map((i) => `${k[0] ?? 'q'}=${'%'.repeat([1, 3, 100, 5_000][i] ?? 1)}`) },
  );
}

/**
 * The oracle for decimal integer query parameters (limit, count, intervalMs):
 * 'reject' for values that are clearly not a decimal integer (hex, exponent,
 * sign, fraction, words, other digits), 'accept' for canonical decimals in range,
 * 'either' for what a stricter or looser parser may reasonably decide (leading
 * zeros, surrounding spaces).
 */
export function decimalVerdict(rawValue: string, min: number, max: number): 'accept' | 'reject' | 'either' {
  let v: string;
  try {
    v = decodeURIComponent(rawValue.replace(/\+/g, ' '));
  } catch {
    return 'either';
  }
  if (/^[1-9]\d{0,14}$/.test(v) || v === '0') {
    const n = Number(v);
    return n >= min && n <= max ? 'accept' : 'reject';
  }
  if (/^\s*\d+\s*$/.test(v)) return 'either';
  return 'reject';
}

// ---------------------------------------------------------------- headers

/** A header value undici will send (latin-1 range, no CR/LF/NUL); other bytes go through raw sockets. */
export function asHeaderValue(s: string): string {
  const latin1 = Buffer.from(s, 'utf8').toString('latin1');
  return latin1.replace(/[^\t\x20-\x7e\x80-\xff]/g, '').trim();
}

export const hostileHeaderValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: hostileString.map(asHeaderValue) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      '*',
      ',',
      ', , ,',
      '""',
      '"',
      'W/',
      'W/""',
      'W/"x", "y"',
      '*/*',
      'x'.repeat(8_000),
      'a,'.repeat(2_000),
      '\t',
      'é',
      '\u00ff\u0080',
    ),
  },
);

/** Content types for bodies: JSON spelled oddly, other types, broken ones, or none. */
export const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      undefined,
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/json; charset="utf-8"',
      'application/json;',
      'application/json ; charset=utf-8',
      'APPLICATION/JSON',
      'Application/Json; Charset=UTF-8',
      'application/json, text/plain',
      'application/json; boundary=x; charset=utf-8; a=b; a=c',
      'application/problem+json',
      'application/merge-patch+json',
      'application/vnd.api+json',
      'application/x-raw-json',
      'application/x-www-form-urlencoded',
      'multipart/form-data',
      'multipart/form-data; boundary=----x',
      'text/plain',
      'text/plain; charset=utf-8',
      'text/json',
      'text/html',
      'application/octet-stream',
      'application/xml',
      'application/*',
      '*/*',
      '',
      ';',
      ';;;',
      'json',
      'application/',
      '/json',
      'application/json\t',
      'application/jsonx',
    ),
  },
);

/** Accept header values, plausible and not. */
export const acceptValue: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  '*/*',
  'application/json',
  'application/problem+json',
  'text/event-stream',
  'text/html',
  'application/xml',
  'image/png',
  'application/json;q=0',
  '*/*;q=0',
  'text/*;q=0.5, application/json;q=abc',
  ';;;,,,',
  '',
  'x'.repeat(5_000),
);
