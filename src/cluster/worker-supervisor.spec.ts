import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { WorkerSupervisor, type SupervisedWorker, type WorkerExit } from './worker-supervisor.js';

class FakeWorker implements SupervisedWorker {
  private static nextPid = 100;
  readonly pid = FakeWorker.nextPid++;
  readonly signals: NodeJS.Signals[] = [];
  readonly exited: Promise<WorkerExit>;
  private resolveExit: (exit: WorkerExit) => void = () => {};

  constructor(
    readonly slot: number,
    private readonly onSignal: (worker: FakeWorker, signal: NodeJS.Signals) => void,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    this.onSignal(this, signal);
  }

  exit(code: number | null, signal: string | null = null): void {
    this.resolveExit({ code, signal });
  }
}

const restart = { baseDelayMs: 100, maxDelayMs: 1000, maxCrashes: 3, windowMs: 60_000 };
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** A supervisor over fake workers; by default a worker exits 0 on SIGTERM, and by signal on SIGKILL. */
function setUp(
  workers: number,
  onSignal: (worker: FakeWorker, signal: NodeJS.Signals) => void = (w, s) => {
    if (s === 'SIGTERM') w.exit(0);
    else w.exit(null, s);
  },
) {
  const forked: FakeWorker[] = [];
  const supervisor = new WorkerSupervisor({
    workers,
    restart,
    logger: quiet,
    fork: (slot) => {
      const worker = new FakeWorker(slot, onSignal);
      forked.push(worker);
      return worker;
    },
  });
  supervisor.start();
  return { supervisor, forked };
}

describe('WorkerSupervisor', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('forks one worker per slot', () => {
    const { supervisor, forked } = setUp(3);
    expect(forked.map((w) => w.slot)).toEqual([0, 1, 2]);
    expect(supervisor.pids).toEqual(forked.map((w) => w.pid));
  });

  it('restarts a worker that dies into the same slot, after the backoff', async () => {
    const { supervisor, forked } = setUp(2);
    const [, second] = forked;
    second!.exit(null, 'SIGKILL');
    await jest.advanceTimersByTimeAsync(99);
    expect(forked).toHaveLength(2);
    expect(supervisor.pids).toEqual([forked[0]!.pid]);
    await jest.advanceTimersByTimeAsync(1);
    expect(forked).toHaveLength(3);
    expect(forked[2]!.slot).toBe(1);
    expect(supervisor.pids).toEqual([forked[0]!.pid, forked[2]!.pid]);
  });

  it('stops restarting a slot that crash-loops and reports it', async () => {
    const { supervisor, forked } = setUp(2);
    let reported: number | undefined;
    void supervisor.crashLoop.then((slot) => {
      reported = slot;
    });
    for (let crash = 0; crash < 2; crash++) {
      forked.at(-1)!.exit(1);
      await jest.advanceTimersByTimeAsync(1000);
    }
    expect(forked.map((w) => w.slot)).toEqual([0, 1, 1, 1]);
    expect(reported).toBeUndefined();
    forked.at(-1)!.exit(1);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(reported).toBe(1);
    expect(forked).toHaveLength(4);
  });

  it('stops gracefully: SIGTERM to every worker, no restarts, resolves once all exited', async () => {
    const { supervisor, forked } = setUp(2, () => {});
    const stopped = supervisor.stop(5000);
    expect(forked.map((w) => w.signals)).toEqual([['SIGTERM'], ['SIGTERM']]);
    forked[0]!.exit(0);
    await jest.advanceTimersByTimeAsync(1000);
    forked[1]!.exit(0);
    await expect(stopped).resolves.toBe(true);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(forked).toHaveLength(2);
  });

  it('cancels a pending restart when stopping', async () => {
    const { supervisor, forked } = setUp(2);
    forked[0]!.exit(1);
    await expect(supervisor.stop(5000)).resolves.toBe(true);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(forked).toHaveLength(2);
  });

  it('kills workers still running after the bound and reports it', async () => {
    const { supervisor, forked } = setUp(2, (w, s) => {
      if (s === 'SIGKILL') w.exit(null, 'SIGKILL');
      else if (w.slot === 0) w.exit(0); // slot 1 ignores SIGTERM
    });
    const stopped = supervisor.stop(3000);
    await jest.advanceTimersByTimeAsync(2999);
    expect(forked[1]!.signals).toEqual(['SIGTERM']);
    await jest.advanceTimersByTimeAsync(1);
    await expect(stopped).resolves.toBe(false);
    expect(forked[0]!.signals).toEqual(['SIGTERM']);
    expect(forked[1]!.signals).toEqual(['SIGTERM', 'SIGKILL']);
  });
});
