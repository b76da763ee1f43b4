// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by
// module (npm package, node internals, the service's own dist/ files, GC, idle).
import { readFileSync } from 'node:fs';

function moduleOf(url, functionName) {
  if (url === '') {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return '(program: native, not attributed)';
    return '(native)';
  }
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const dist = url.indexOf('/dist/');
  if (dist !== -1)
    return `service: ${url
      .slice(dist + 1)
      .split('/')
      .slice(0, 2)
      .join('/')}`;
  return url.replace(/^file:\/\//, '');
}

/**
 * `window` ({ fromUs, toUs }, CLOCK_MONOTONIC microseconds as process.hrtime gives them, the clock V8 stamps
 * samples with on Linux) keeps only the samples taken under load, not start-up or shutdown.
 */
export function summariseProfile(path, window = undefined, top = 12) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue;
    const next = timeDeltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, next));
  }
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Inclusive time per module: a sample counts once for every module on its stack.
  const inclusive = new Map();
  const stackModules = (id) => {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (frame !== undefined && frame.url !== '') seen.add(moduleOf(frame.url, frame.functionName));
    }
    return seen;
  };
  const fns = new Map();
  const mods = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const mod = moduleOf(url, functionName);
    if (mod === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const short =
      url === ''
        ? ''
        : ` ${url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${short}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    mods.set(mod, (mods.get(mod) ?? 0) + us);
    for (const m of stackModules(id)) inclusive.set(m, (inclusive.get(m) ?? 0) + us);
  }
  const rankOf = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: total === 0 ? 0 : us / total }));
  return {
    busyMs: total / 1000,
    idleMs: idle / 1000,
    functions: rankOf(fns),
    modules: rankOf(mods),
    inclusive: rankOf(inclusive).filter((m) => m.name !== 'node internals'),
  };
}
