// Bearer tokens for the benchmarks, minted by the built CLI (dist/auth/token.cli.js)
// with a key of the run's own: every service under test is started with the same
// AUTH_KEYS_DIR, so it verifies them.
import { spawnSync } from 'node:child_process';

/** A one-hour token for `sub` with `scope` (space-separated, or none), signed by the key in `keysDir`. */
export function mintToken(keysDir, sub, scope) {
  const r = spawnSync(
    process.execPath,
    ['dist/auth/token.cli.js', '--sub', sub, ...(scope === undefined ? [] : ['--scope', scope]), '--ttl', '1h'],
    {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', AUTH_KEYS_DIR: keysDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const token = r.stdout?.trim() ?? '';
  if (r.status !== 0 || token === '') throw new Error(`token CLI failed (${r.status}): ${r.stderr}`);
  return token;
}
