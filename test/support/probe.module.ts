import { Controller, Get, Module, Query } from '@nestjs/common';
import { Bulkhead } from '../../src/resilience/nest/bulkhead.decorator.js';
import { PolicyRegistry } from '../../src/resilience/nest/policy.registry.js';
import { RateLimit } from '../../src/resilience/nest/rate-limit.decorator.js';
import { RequestSignal } from '../../src/resilience/nest/request-signal.js';
import { Timeout } from '../../src/resilience/nest/timeout.decorator.js';
import { Public } from '../../src/auth/access.decorators.js';

/** What the probe routes observed, for the tests to read. */
export const probeState = {
  lastAbortReason: undefined as unknown,
  dependencyCalls: 0,
  failDependency: false,
};

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      probeState.lastAbortReason = signal.reason;
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Routes that exercise the resilience decorators through the real HTTP stack.
 * Mounted by the resilience end-to-end suite only.
 */
@Public()
@Controller('probe')
class ProbeController {
  constructor(private readonly registry: PolicyRegistry) {}

  @Get('slow')
  @Timeout(150)
  async slow(@Query('ms') ms: string, @RequestSignal() signal: AbortSignal): Promise<{ ok: true }> {
    await sleep(Number(ms), signal);
    return { ok: true };
  }

  @Get('bulkhead')
  @Bulkhead('comments')
  async bulkhead(@Query('ms') ms: string, @RequestSignal() signal: AbortSignal): Promise<{ ok: true }> {
    await sleep(Number(ms), signal);
    return { ok: true };
  }

  @Get('limited')
  @RateLimit({ name: 'probe', rate: 1, capacity: 2 })
  limited(): { ok: true } {
    return { ok: true };
  }

  @Get('dependency')
  async dependency(@RequestSignal() signal: AbortSignal): Promise<{ ok: true }> {
    return this.registry.get('posts').execute(async () => {
      probeState.dependencyCalls++;
      if (probeState.failDependency) throw Object.assign(new Error('upstream said 503'), { status: 503 });
      return { ok: true as const };
    }, signal);
  }

  @Get('crash')
  crash(): never {
    throw new Error('probe: an unexpected failure');
  }

  @Get('block')
  block(@Query('ms') ms: string): { blockedMs: number } {
    const until = Date.now() + Number(ms);
    while (Date.now() < until) {
      // Busy-wait: stalls the event loop on purpose, to trigger load shedding.
    }
    return { blockedMs: Number(ms) };
  }
}

@Module({ controllers: [ProbeController] })
export class ProbeModule {}
