import { existsSync } from 'node:fs';
import { AppConfig } from './app-config.js';
import { ConfigError } from './config.error.js';
import { envSchema } from './env.schema.js';

type EnvSource = Readonly<Record<string, string | undefined>>;

/**
 * Validates an environment and returns the typed config. Throws a ConfigError
 * whose message is one line naming the first bad variable and what was expected.
 */
export function parseConfig(source: EnvSource): AppConfig {
  const result = envSchema.safeParse(source);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = issue?.path.join('.') ?? 'environment';
    const got = typeof source[variable] === 'string' ? ` (got ${JSON.stringify(source[variable])})` : '';
    throw new ConfigError(`Invalid configuration: ${issue?.message ?? `${variable} is invalid`}${got}`);
  }
  return new AppConfig(result.data);
}

/** Reads `.env` (if present, without overriding the real environment) and the process environment. */
export function loadConfig(): AppConfig {
  if (existsSync('.env')) {
    process.loadEnvFile('.env');
  }
  return parseConfig(process.env);
}

/** The process environment, for the few callers (tests, CLIs) that build config from overrides. */
export function processEnv(): EnvSource {
  return process.env;
}
