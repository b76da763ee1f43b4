// Writing a benchmark's section of BENCHMARKS.md: the section from its `## ` heading
// to the next one is replaced, or added when the file has none yet; and the machine
// the section describes.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/** Where the line `heading` starts in `text` (a whole line: `## A` is not found in `### A b`), else -1. */
function headingAt(text, heading) {
  if (text.startsWith(`${heading}\n`)) return 0;
  const at = text.indexOf(`\n${heading}\n`);
  return at === -1 ? -1 : at + 1;
}

/**
 * Replaces the section of `path` that starts with the line `heading` by `section`
 * (which starts with that heading). Without one, `section` goes at the end, or with
 * `missing: 'first'` before the first `## ` section.
 */
export function writeSection(heading, section, { path = 'BENCHMARKS.md', missing = 'end' } = {}) {
  const text = readFileSync(path, 'utf8');
  const start = headingAt(text, heading);
  if (start === -1) {
    const first = missing === 'first' ? text.indexOf('\n## ') : -1;
    writeFileSync(
      path,
      first === -1
        ? `${text.trimEnd()}\n\n${section}`
        : `${text.slice(0, first + 1)}${section}\n${text.slice(first + 1)}`,
    );
    return;
  }
  const next = text.indexOf('\n## ', start + heading.length);
  const rest = next === -1 ? '' : text.slice(next + 1);
  writeFileSync(path, `${text.slice(0, start)}${section}${rest === '' ? '' : `\n${rest}`}`);
}

/** The load average now (1, 5, 15 min), as text. */
export const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** What a section says about the machine: CPU model, cores, memory, OS, the load average now. */
export function describeMachine() {
  return {
    cpu:
      /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ??
      os.cpus()[0]?.model ??
      'unknown CPU',
    cores: os.availableParallelism(),
    nproc: os.availableParallelism(),
    mem: (os.totalmem() / 1e9).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    load: loadAverage(),
  };
}
