// The registry mirror these machines reach serves only the Linux builds of
// packages with per-platform optional dependencies (@swc/core-*, unrs-resolver
// bindings...), so `npm install` leaves the other platforms out of
// package-lock.json and `npm ci` then refuses the lock as out of sync.
// This adds the missing optional entries (version, os, cpu from the package
// name), which npm ci skips on non-matching platforms, as the public registry
// would have written them. Run it after every `npm install`.
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = 'package-lock.json';
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const packages = lock.packages;

const OS = [
  'darwin',
  'linux',
  'win32',
  'freebsd',
  'android',
  'openharmony',
  'sunos',
  'aix',
  'netbsd',
  'openbsd',
  'wasm32',
];
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'wasm32'];

function platformOf(name) {
  const base = name.split('/').pop();
  const parts = base.split('-');
  const os = parts.find((p) => OS.includes(p));
  let cpu = parts.find((p) => CPU.includes(p));
  if (base.includes('arm-gnueabihf') || base.includes('arm-musleabihf') || base.includes('arm-eabi')) cpu = 'arm';
  const libc = base.includes('musl') ? 'musl' : base.includes('gnu') ? 'glibc' : undefined;
  return { os, cpu, libc };
}

let added = 0;
for (const [path, meta] of Object.entries(packages)) {
  for (const [dep, range] of Object.entries(meta.optionalDependencies ?? {})) {
    // npm resolves a dependency next to its parent first, then up the tree.
    const nested = `${path}/node_modules/${dep}`;
    const top = `node_modules/${dep}`;
    if (packages[nested] || packages[top]) continue;
    const version = String(range).replace(/^[\^~=]/, '');
    if (!/^\d+\.\d+\.\d+/.test(version)) continue;
    const { os, cpu, libc } = platformOf(dep);
    if (!os && !cpu) continue;
    packages[top] = {
      version,
      ...(cpu ? { cpu: [cpu] } : {}),
      dev: meta.dev ?? undefined,
      license: meta.license,
      optional: true,
      ...(os ? { os: [os] } : {}),
      ...(libc ? { libc: [libc] } : {}),
    };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
lock.packages = sorted;
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${String(added)} optional platform entries`);
