import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { timingSafeEqual, createHash } from 'node:crypto';
import { AppConfig } from '../../config/app-config.js';
import { AppException } from '../errors/app.exception.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Admin endpoints need `Authorization: Bearer <ADMIN_TOKEN>`: 401 without
 * credentials, 403 with wrong ones, and 403 for everyone while ADMIN_TOKEN is unset.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(config: AppConfig) {
    this.expected = config.adminToken === undefined ? undefined : digest(config.adminToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) {
      throw new AppException('unauthorized', 'Send Authorization: Bearer <admin token>', {
        headers: { 'www-authenticate': 'Bearer realm="admin"' },
      });
    }
    // Compare digests in constant time, so the token's length and prefix do not leak.
    if (this.expected === undefined || !timingSafeEqual(digest(match[1]), this.expected)) {
      throw new AppException('forbidden', 'These credentials do not grant admin access');
    }
    return true;
  }
}
