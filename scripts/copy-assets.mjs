// Copies the non-TypeScript files that the build needs next to the compiled output.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = 'src';
const OUT = 'dist';
const COPY = /\.(mjs|html|css|js)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (COPY.test(name)) cpSync(path, join(OUT, relative(SRC, path)));
  }
}
walk(SRC);
