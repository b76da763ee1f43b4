/**
 * Token CLI: `npm run -s token -- --sub 42 --scope "users:write" --ttl 1h`
 * prints a token signed by the local issuer (the key in AUTH_KEYS_DIR, created
 * if missing), alone on stdout. With AUTH_JWKS_URL set the provider issues
 * tokens, not this service, and the CLI refuses.
 *
 * Exit codes: 0 printed, 1 failed (one line on stderr), 2 bad arguments.
 */
import { fail } from '../database/cli-support.js';
import { loadConfig } from '../config/load-config.js';
import { LocalIssuer } from './local-issuer.js';
import { parseTokenArgs, TOKEN_USAGE, TokenUsageError, type TokenArgs } from './token-args.js';

async function main(): Promise<void> {
  let args: TokenArgs;
  try {
    args = parseTokenArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof TokenUsageError)) throw error;
    process.stderr.write(`${error.message}\n${TOKEN_USAGE}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(`${TOKEN_USAGE}\n`);
    return;
  }
  const config = loadConfig();
  if (config.auth.jwksUrl !== undefined) {
    throw new Error('AUTH_JWKS_URL is set: tokens come from that identity provider, not from this service');
  }
  const issuer = await LocalIssuer.open(config.auth.keysDir, config.auth.issuer, config.auth.audience);
  const token = await issuer.sign({
    sub: args.sub,
    ttlS: args.ttlS,
    ...(args.name === undefined ? {} : { name: args.name }),
    ...(args.scope === undefined ? {} : { scope: args.scope }),
  });
  process.stdout.write(`${token}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => fail('token failed', error),
);
