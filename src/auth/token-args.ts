import { parseArgs } from 'node:util';
import { SCOPES } from './caller.js';

export const TOKEN_USAGE =
  'usage: npm run -s token -- --sub <id> [--name <display name>] [--scope "<scopes>"] [--ttl 1h]   (scopes: ' +
  `${SCOPES.join(', ')}; ttl: N s|m|h|d, at most 30d)`;

export interface TokenArgs {
  readonly sub: string;
  readonly name: string | undefined;
  readonly scope: string | undefined;
  readonly ttlS: number;
  readonly help: boolean;
}

/** A bad command line: the CLI prints the message (one line) and exits 2. */
export class TokenUsageError extends Error {
  override readonly name = 'TokenUsageError';
}

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const MAX_TTL_S = 30 * 86_400;

export function parseTtl(raw: string): number {
  const match = /^(\d{1,7})([smhd]?)$/.exec(raw.trim());
  const seconds = match === null ? Number.NaN : Number(match[1]) * (UNIT_S[match[2] || 's'] ?? 1);
  if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_TTL_S) {
    throw new TokenUsageError(`--ttl must be like 90s, 15m, 1h or 7d, at most 30d (got ${JSON.stringify(raw)})`);
  }
  return seconds;
}

/** Parses the token CLI's flags; anything unknown or out of range is a TokenUsageError. */
export function parseTokenArgs(argv: readonly string[]): TokenArgs {
  let values: { sub?: string; name?: string; scope?: string; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        sub: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string' },
        ttl: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new TokenUsageError((error as Error).message);
  }
  if (values.help === true) return { sub: '', name: undefined, scope: undefined, ttlS: 0, help: true };
  const sub = values.sub?.trim() ?? '';
  if (sub === '' || sub.length > 255) throw new TokenUsageError('--sub is required (1 to 255 characters)');
  const scopes = (values.scope ?? '').split(/\s+/).filter((s) => s !== '');
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    throw new TokenUsageError(`unknown scope ${unknown.join(', ')} (known: ${SCOPES.join(', ')})`);
  }
  return {
    sub,
    name: values.name?.trim() === '' ? undefined : values.name?.trim(),
    scope: scopes.length === 0 ? undefined : scopes.join(' '),
    ttlS: parseTtl(values.ttl ?? '1h'),
    help: false,
  };
}
