import { RestartPolicy, type RestartPolicyOptions } from './restart-policy.js';

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** One worker process, as the supervisor sees it (node:cluster's Worker in production, a fake in tests). */
export interface SupervisedWorker {
  readonly pid: number | undefined;
  kill(signal: NodeJS.Signals): void;
  /** Settles once, when the process has exited. */
  readonly exited: Promise<WorkerExit>;
}

export interface SupervisorLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface WorkerSupervisorOptions {
  readonly workers: number;
  readonly fork: (slot: number) => SupervisedWorker;
  readonly restart: RestartPolicyOptions;
  readonly logger: SupervisorLogger;
  readonly now?: () => number;
}

interface Slot {
  readonly index: number;
  readonly policy: RestartPolicy;
  worker: SupervisedWorker | undefined;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Keeps `workers` processes running: forks them, restarts one that exits
 * while the service is not stopping (after the slot's backoff), and reports
 * a crash loop through `crashLoop` instead of restarting forever. `stop()`
 * asks every worker to shut down gracefully and waits, within a bound.
 */
export class WorkerSupervisor {
  /** Resolves with the slot that crash-looped; never rejects. */
  readonly crashLoop: Promise<number>;
  private reportCrashLoop: (slot: number) => void = () => {};
  private readonly slots: Slot[];
  private stopping = false;

  constructor(private readonly options: WorkerSupervisorOptions) {
    this.crashLoop = new Promise((resolve) => {
      this.reportCrashLoop = resolve;
    });
    this.slots = Array.from({ length: options.workers }, (_, index) => ({
      index,
      policy: new RestartPolicy(options.restart, options.now),
      worker: undefined,
      restartTimer: undefined,
    }));
  }

  start(): void {
    for (const slot of this.slots) this.spawn(slot);
  }

  /** Pids of the workers running now. */
  get pids(): number[] {
    return this.slots.flatMap((s) => (s.worker?.pid === undefined ? [] : [s.worker.pid]));
  }

  /**
   * SIGTERM to every worker (each runs its own graceful shutdown), then waits
   * for all to exit. Workers still running after `timeoutMs` are killed.
   * Resolves true when every worker exited in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
    }
    const running = this.slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
    for (const worker of running) worker.kill('SIGTERM');
    const all = Promise.all(running.map((w) => w.exited));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    const outcome = await Promise.race([all, late]);
    clearTimeout(timer);
    if (outcome !== 'late') return true;
    const stragglers = this.slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
    this.options.logger.error(
      { workerPids: stragglers.map((w) => w.pid), timeoutMs },
      'cluster: workers still running after the shutdown bound, killing them',
    );
    for (const worker of stragglers) worker.kill('SIGKILL');
    await all;
    return false;
  }

  private spawn(slot: Slot): void {
    const worker = this.options.fork(slot.index);
    slot.worker = worker;
    this.options.logger.info({ slot: slot.index, workerPid: worker.pid }, 'cluster: worker forked');
    void worker.exited.then((exit) => {
      this.onExit(slot, worker, exit);
    });
  }

  private onExit(slot: Slot, worker: SupervisedWorker, exit: WorkerExit): void {
    if (slot.worker === worker) slot.worker = undefined;
    if (this.stopping) return;
    const delay = slot.policy.onCrash();
    const fields = { slot: slot.index, workerPid: worker.pid, code: exit.code, signal: exit.signal };
    if (delay === undefined) {
      this.options.logger.error(
        { ...fields, maxCrashes: this.options.restart.maxCrashes, windowMs: this.options.restart.windowMs },
        'cluster: worker keeps dying, giving up',
      );
      this.reportCrashLoop(slot.index);
      return;
    }
    this.options.logger.warn({ ...fields, restartInMs: delay }, 'cluster: worker exited, restarting it');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.spawn(slot);
    }, delay);
  }
}
