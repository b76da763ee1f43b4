// The FastAPI peer of `npm run bench` (bench/peers/fastapi/app.py): finds a
// Python that imports its packages, installing Debian's packages when none
// does, and starts it under uvicorn (uvloop, httptools, one worker, access log
// off) pinned like the other servers.
import { spawnSync } from 'node:child_process';
import { spawnCommand } from './proc.mjs';

export const DEBIAN_PACKAGES = [
  'python3-fastapi',
  'python3-uvicorn',
  'python3-uvloop',
  'python3-httptools',
  'python3-asyncpg',
  'python3-httpx',
  'python3-psutil',
];
const IMPORTS = 'import fastapi, uvicorn, uvloop, httptools, asyncpg, httpx, psutil';
const REPORT = `${IMPORTS}, sys, platform; print(sys.executable, platform.python_version(), fastapi.__version__, uvicorn.__version__)`;

/** The first interpreter that imports every package: { python, version } or { reason }. */
function probe(candidates) {
  let reason = 'no python3';
  for (const candidate of candidates) {
    const r = spawnSync(candidate, ['-c', REPORT], { encoding: 'utf8', timeout: 30_000 });
    if (r.status === 0) {
      const [python, py, fastapi, uvicorn] = r.stdout.trim().split(' ');
      return { python, version: `Python ${py}, FastAPI ${fastapi}, uvicorn ${uvicorn}` };
    }
    if (r.error === undefined) {
      const last = (r.stderr ?? '').trim().split('\n').at(-1) ?? '';
      reason = `${candidate}: ${last || `exit ${r.status}`}`;
    }
  }
  return { reason };
}

function apt(args, log) {
  const r = spawnSync('apt-get', args, {
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error !== undefined) return `apt-get: ${r.error.message}`;
  if (r.status !== 0) {
    const last = (r.stderr ?? '').trim().split('\n').at(-1) ?? '';
    log(`  apt-get ${args[0]} exited with ${r.status}: ${last}`);
    return `apt-get ${args[0]} exited with ${r.status}${last === '' ? '' : ` (${last})`}`;
  }
  return undefined;
}

/**
 * Looks for the peer's Python: BENCH_PYTHON, then `python3` on PATH, then Debian's
 * /usr/bin/python3 (where the Debian packages land when PATH has another Python first).
 * When none imports the packages: `apt-get install` them (after `apt-get update -qq` and
 * once more when the first try fails), then looks again.
 * Returns { python, version } or { reason } (why the peer is not run).
 */
export function findFastApi(log) {
  const candidates = [...new Set([process.env.BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean))];
  const first = probe(candidates);
  if (first.python !== undefined) return first;
  log(`FastAPI peer: ${first.reason}; trying apt-get install ${DEBIAN_PACKAGES.join(' ')}`);
  const install = ['install', '-y', '-qq', '--no-install-recommends', ...DEBIAN_PACKAGES];
  let failed = apt(install, log);
  if (failed !== undefined) {
    const updated = apt(['update', '-qq'], log);
    failed = updated ?? apt(install, log);
  }
  if (failed !== undefined) return { reason: failed };
  const again = probe(candidates);
  return again.python !== undefined ? again : { reason: `installed, but ${again.reason}` };
}

/** uvicorn serving bench/peers/fastapi/app.py on 127.0.0.1:`port`, pinned to `core`. */
export function spawnFastApi(python, port, { core, env }) {
  return spawnCommand(
    python,
    [
      '-m',
      'uvicorn',
      'app:app',
      '--app-dir',
      'bench/peers/fastapi',
      '--loop',
      'uvloop',
      '--http',
      'httptools',
      '--workers',
      '1',
      '--no-access-log',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ],
    // No __pycache__ in the work tree.
    { core, env: { ...env, PYTHONDONTWRITEBYTECODE: '1' } },
  );
}
