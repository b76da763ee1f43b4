import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { from, lastValueFrom, type Observable } from 'rxjs';
import { BULKHEAD_METADATA } from './bulkhead.decorator.js';
import { PolicyRegistry } from './policy.registry.js';
import { requestSignalOf } from './request-signal.js';

/** Enforces `@Bulkhead(name)` around the handler. */
@Injectable()
export class BulkheadInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly registry: PolicyRegistry,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const name = this.reflector.getAllAndOverride<string | undefined>(BULKHEAD_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (name === undefined || context.getType() !== 'http') return next.handle();
    const bulkhead = this.registry.get(name).bulkhead;
    return from(
      bulkhead.execute(() => lastValueFrom(next.handle(), { defaultValue: undefined }), requestSignalOf(context)),
    );
  }
}
