/** DI token of the local issuer: a LocalIssuer, or undefined when AUTH_JWKS_URL names a provider. */
export const LOCAL_ISSUER = Symbol('LOCAL_ISSUER');
