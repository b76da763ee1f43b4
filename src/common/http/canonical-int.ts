import { Transform } from 'class-transformer';

const CANONICAL_INT = /^(?:0|-?[1-9]\d{0,15})$/;

/**
 * Query integers are canonical decimals: `16`, never `0x10`, `1e3`, `+16`,
 * `016` or ` 16` (which `Number()` would all accept). Anything else is left a
 * string, so the field's `@IsInt()` answers the 400.
 */
export const CanonicalInt = (): PropertyDecorator =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && CANONICAL_INT.test(value) ? Number(value) : value,
  );
