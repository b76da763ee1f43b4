import { Injectable } from '@nestjs/common';

/**
 * Set when the process starts draining (SIGTERM), before the server stops
 * accepting: readiness answers 503 from then on so balancers move away first.
 */
@Injectable()
export class ShutdownState {
  private drainingSince: number | undefined;

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  startDraining(): void {
    this.drainingSince ??= Date.now();
  }
}
