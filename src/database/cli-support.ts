import { Logger, type LoggerService } from '@nestjs/common';
import { ConfigError } from '../config/config.error.js';

/**
 * Nest's Logger calls (e.g. Database's "embedded PostgreSQL on ..." line) as plain
 * `[context] message` lines on stderr, so a CLI's stdout holds only its own output.
 * Debug and verbose messages are dropped.
 */
class PlainStderrLogger implements LoggerService {
  log(message: unknown, ...rest: unknown[]): void {
    this.write('', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warning: ', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error: ', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal: ', message, rest);
  }
  debug(): void {}
  verbose(): void {}

  private write(prefix: string, message: unknown, rest: unknown[]): void {
    const context =
      rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? `[${String(rest[rest.length - 1])}] ` : '';
    const text =
      message instanceof Error ? message.message : typeof message === 'string' ? message : JSON.stringify(message);
    process.stderr.write(`${context}${prefix}${oneLine(text)}\n`);
  }
}

/** Routes Nest's static Logger to plain stderr lines; call once, before Database.open. */
export function useCliLogger(): void {
  Logger.overrideLogger(new PlainStderrLogger());
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * One line describing an error: a ConfigError's message as is; otherwise the
 * message (pg's connection failures can be AggregateErrors with an empty one).
 */
export function describeError(error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  if (error instanceof AggregateError && error.errors.length > 0) {
    const inner = [...new Set(error.errors.map((e: unknown) => describeError(e)))].join('; ');
    return error.message ? `${oneLine(error.message)}: ${inner}` : inner;
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = oneLine(error.message) || error.name;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return oneLine(String(error));
}

/** Writes one line to stderr and exits with `code`. */
export function fail(prefix: string, error: unknown, code = 1): never {
  const text = error instanceof ConfigError ? error.message : `${prefix}: ${describeError(error)}`;
  process.stderr.write(`${text}\n`);
  process.exit(code);
}
