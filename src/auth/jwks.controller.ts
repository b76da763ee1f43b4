import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { JWK } from 'jose';
import { AppException } from '../common/errors/app.exception.js';
import { ApiProblems } from '../common/errors/problem.dto.js';
import { SkipRateLimit } from '../resilience/nest/rate-limit.decorator.js';
import { Public } from './access.decorators.js';
import { LOCAL_ISSUER } from './auth.tokens.js';
import type { LocalIssuer } from './local-issuer.js';

/** The local issuer's public key set, for anything that verifies this service's tokens. */
@ApiTags('auth')
@Controller('.well-known')
export class JwksController {
  constructor(@Inject(LOCAL_ISSUER) private readonly issuer: LocalIssuer | undefined) {}

  @Get('jwks.json')
  @Public()
  @SkipRateLimit()
  @Header('cache-control', 'public, max-age=300')
  @ApiOkResponse({ description: 'JSON Web Key Set of the local issuer (404 when AUTH_JWKS_URL names a provider)' })
  @ApiProblems(404)
  keys(): { keys: JWK[] } {
    if (this.issuer === undefined) {
      throw new AppException('not_found', 'Tokens are issued by the identity provider at AUTH_JWKS_URL');
    }
    return this.issuer.jwks();
  }
}
