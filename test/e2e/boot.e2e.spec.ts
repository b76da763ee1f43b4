import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';

/** Starts the built service with a bad environment and returns how it failed. */
function boot(env: Record<string, string>) {
  const result = spawnSync(process.execPath, ['dist/main.js'], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stderr: result.stderr.trim(), stdout: result.stdout.trim() };
}

describe('boot with a bad environment', () => {
  it.each([
    [{ PORT: 'http' }, 'Invalid configuration: PORT must be an integer between 0 and 65535 (got "http")'],
    [
      { DATABASE_URL: 'mysql://db/app' },
      'Invalid configuration: DATABASE_URL must be a postgres:// or postgresql:// URL',
    ],
    [{ BODY_LIMIT_BYTES: '-1' }, 'Invalid configuration: BODY_LIMIT_BYTES must be an integer between 1 and 1073741824'],
  ])('%j stops the process with one clear line', (env, line) => {
    const { code, stderr, stdout } = boot(env);
    expect(code).toBe(1);
    expect(stderr.startsWith(line)).toBe(true);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stdout).toBe('');
  });
});
