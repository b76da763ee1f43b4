import { Global, Logger, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { LOCAL_ISSUER } from './auth.tokens.js';
import { Authenticator } from './authenticator.js';
import { JoseTokenVerifier } from './jose-token.verifier.js';
import { JwksController } from './jwks.controller.js';
import { LocalIssuer } from './local-issuer.js';
import { ProviderKeySet } from './provider-key-set.js';
import { TokenVerifier } from './token-verifier.js';

/**
 * Verified callers: tokens from the provider at AUTH_JWKS_URL, or from the
 * service's own issuer when none is set. The access hooks (registered by
 * app.factory) use the Authenticator; handlers read @CurrentCaller().
 */
@Global()
@Module({
  controllers: [JwksController],
  providers: [
    {
      provide: LOCAL_ISSUER,
      inject: [AppConfig],
      useFactory: async (config: AppConfig): Promise<LocalIssuer | undefined> =>
        config.auth.jwksUrl === undefined
          ? LocalIssuer.open(config.auth.keysDir, config.auth.issuer, config.auth.audience)
          : undefined,
    },
    {
      provide: TokenVerifier,
      inject: [AppConfig, LOCAL_ISSUER],
      useFactory: (config: AppConfig, issuer: LocalIssuer | undefined): TokenVerifier => {
        const { jwksUrl, jwksCooldownMs, issuer: iss, audience, clockToleranceS } = config.auth;
        const keys =
          jwksUrl === undefined
            ? issuer?.getKey
            : new ProviderKeySet({ url: jwksUrl, cooldownMs: jwksCooldownMs, logger: new Logger('Auth') }).getKey;
        if (keys === undefined) throw new Error('no key set to verify tokens with');
        return new JoseTokenVerifier({ keys, issuer: iss, audience, clockToleranceS });
      },
    },
    Authenticator,
  ],
  exports: [Authenticator, TokenVerifier, LOCAL_ISSUER],
})
export class AuthModule {}
