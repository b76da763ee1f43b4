import type { FaultPatch, FaultTarget, SimulatorState } from './simulator.js';

/** Admin calls should be instant; a hung simulator must fail a test, not stall it. */
const ADMIN_TIMEOUT_MS = 5000;

/**
 * Drives a running simulator's admin endpoint over HTTP (global fetch), from
 * tests, benchmarks or another process.
 *
 * @example
 * const sim = new SimulatorClient('http://127.0.0.1:4010');
 * await sim.setFaults('posts', { latencyMs: 200, errorRate: 0.1, seed: 42 });
 * const { stats } = await sim.state();
 * await sim.reset();
 */
export class SimulatorClient {
  private readonly baseUrl: string;

  /** @param baseUrl the simulator's URL, e.g. `http://127.0.0.1:4010` (a trailing slash is fine). */
  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /**
   * Merges `knobs` into the knobs of `group` ('all' sets both groups); knobs
   * not named keep their values. Resolves with the new state.
   * @throws Error naming the simulator's reason when it rejects a value (400).
   */
  setFaults(group: FaultTarget, knobs: FaultPatch): Promise<SimulatorState> {
    return this.call('PUT', '/__admin/faults', { ...knobs, group });
  }

  /** Restores the default knobs and seeds, zeroes the stats and empties the request-id ring. */
  reset(): Promise<SimulatorState> {
    return this.call('POST', '/__admin/reset');
  }

  /** The current knobs, stats and recorded request ids. */
  state(): Promise<SimulatorState> {
    return this.call('GET', '/__admin/state');
  }

  private async call(method: string, path: string, body?: object): Promise<SimulatorState> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) {
      let reason = text;
      try {
        const parsed = JSON.parse(text) as { message?: unknown };
        if (typeof parsed.message === 'string') reason = parsed.message;
      } catch {
        // Not JSON: report the raw text.
      }
      throw new Error(`simulator ${method} ${path} answered ${String(res.status)}: ${reason}`);
    }
    return JSON.parse(text) as SimulatorState;
  }
}
