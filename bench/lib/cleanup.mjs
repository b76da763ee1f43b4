// A benchmark run's cleanups and the processes it started: the cleanups run last
// first at the end (or on SIGINT/SIGTERM, after the processes still running are
// killed, then the run exits 130).

/**
 * `cleanups` (push functions onto it), `cleanup()` to run them all, and `track(child)`
 * for a process to kill if the run is interrupted; `log` reports a cleanup that fails.
 */
export function runCleanups(log) {
  const cleanups = [];
  const live = new Set();
  async function cleanup() {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()();
      } catch (error) {
        log(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      for (const child of live) child.kill('SIGKILL');
      void cleanup().then(() => process.exit(130));
    });
  }
  const track = (child) => {
    live.add(child);
    child.once('exit', () => live.delete(child));
    return child;
  };
  return { cleanups, cleanup, track };
}
