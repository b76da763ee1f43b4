// Builds dist/ once before any suite runs: the process-level tests (graceful
// shutdown, boot failures) start the compiled service exactly as `npm start` does.
// A failed build is reported but does not stop suites that do not need dist/
// (CI builds as its own step first, so a broken build still fails there).
import { execFileSync } from 'node:child_process';

export default function globalSetup() {
  try {
    execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'pipe' });
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim();
    console.warn(`\n[global-setup] build failed; process-level tests will use whatever dist/ holds:\n${output}\n`);
  }
}
