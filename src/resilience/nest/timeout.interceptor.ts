import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Observable } from 'rxjs';
import { TimeoutError } from '../resilience.errors.js';
import { requestAbortController } from './request-signal.js';
import { TIMEOUT_METADATA } from './timeout.decorator.js';

/** Enforces `@Timeout(ms)`: errors with a TimeoutError (504) and aborts the request's signal with it. */
@Injectable()
export class TimeoutInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const ms = this.reflector.getAllAndOverride<number | undefined>(TIMEOUT_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (ms === undefined || context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const controller = requestAbortController(http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>());
    return new Observable((subscriber) => {
      const timer = setTimeout(() => {
        const error = new TimeoutError('http', ms, 'deadline');
        controller.abort(error);
        subscriber.error(error);
      }, ms);
      const subscription = next.handle().subscribe(subscriber);
      return () => {
        clearTimeout(timer);
        subscription.unsubscribe();
      };
    });
  }
}
