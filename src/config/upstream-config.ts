import { ConfigError } from './config.error.js';

/** Where the stand-alone upstream simulator (`npm run upstream`) listens. */
export interface UpstreamConfig {
  readonly host: string;
  readonly port: number;
}

type EnvSource = Readonly<Record<string, string | undefined>>;

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 4010;

/**
 * Reads `UPSTREAM_HOST` (default 127.0.0.1) and `UPSTREAM_PORT` (default 4010,
 * 0 picks a free port) for the simulator process. Empty values count as unset,
 * like the service's own variables. Kept apart from the service's schema: the
 * simulator is its own process and must not need the service's environment.
 *
 * @throws ConfigError with a one-line message naming the bad variable.
 */
export function loadUpstreamConfig(env: EnvSource = process.env): UpstreamConfig {
  const rawHost = env['UPSTREAM_HOST'];
  const host = rawHost === undefined || rawHost === '' ? DEFAULT_HOST : rawHost.trim();
  if (host === '') {
    throw new ConfigError('Invalid configuration: UPSTREAM_HOST must not be empty');
  }

  const rawPort = env['UPSTREAM_PORT'];
  if (rawPort === undefined || rawPort === '') return { host, port: DEFAULT_PORT };
  const trimmed = rawPort.trim();
  const port = /^\d{1,5}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(
      `Invalid configuration: UPSTREAM_PORT must be an integer between 0 and 65535 (got ${JSON.stringify(rawPort)})`,
    );
  }
  return { host, port };
}
