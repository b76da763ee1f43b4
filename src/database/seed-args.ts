import { parseArgs } from 'node:util';

export const DEFAULT_USERS = 1000;
export const DEFAULT_BATCH_SIZE = 1000;
export const MAX_USERS = 10_000_000;
/** Two bind parameters per row; PostgreSQL allows 65535 per statement. */
export const MAX_BATCH_SIZE = 10_000;

export interface SeedArgs {
  readonly users: number;
  readonly batchSize: number;
  readonly help: boolean;
}

export const SEED_USAGE = `usage: seed.cli.js [--users N] [--batch-size N]   (N users, default ${DEFAULT_USERS}; rows per INSERT, default ${DEFAULT_BATCH_SIZE})`;

/** A bad command line: the CLI prints the message (one line) and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function positiveInt(flag: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = raw.trim();
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--${flag} must be a whole number between 1 and ${String(max)} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

const VALUE_FLAGS = new Set(['--users', '-n', '--batch-size']);
const isOption = (arg: string) => /^(--users|-n|--batch-size|--help|-h)(=|$)/.test(arg);

/** Parses `--users N` / `--users=N`, `--batch-size N` and `--help`; anything else is a UsageError. */
export function parseSeedArgs(argv: readonly string[]): SeedArgs {
  // `--users -5` would otherwise be rejected as "ambiguous": bind the next word as the
  // value so the range check below reports it plainly.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    if (VALUE_FLAGS.has(arg) && next !== undefined && next.startsWith('-') && !isOption(next)) {
      args.push(`${arg === '-n' ? '--users' : arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  let values: { users?: string; 'batch-size'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        users: { type: 'string', short: 'n' },
        'batch-size': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    // parseArgs' messages can span lines and suggest `--users -- -5`-style fixes: keep the first line.
    const first = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'invalid arguments';
    throw new UsageError(first.replace(/argument is ambiguous\.?$/, 'needs a value'));
  }
  return {
    users: positiveInt('users', values.users, DEFAULT_USERS, MAX_USERS),
    batchSize: positiveInt('batch-size', values['batch-size'], DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE),
    help: values.help === true,
  };
}
