import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./jwks-server.process.mjs', import.meta.url));

export interface JwksServer {
  /** The key set's URL, for AUTH_JWKS_URL. */
  readonly jwksUrl: string;
  /** A token signed by the provider: its current key unless told. */
  sign(
    claims: Record<string, unknown>,
    key?: 'current' | 'previous' | 'retired' | 'unpublished',
    expiresInS?: number,
  ): Promise<string>;
  /** Publishes a new current key (new kid); `drop` unpublishes the older ones. */
  rotate(drop?: boolean): Promise<string>;
  /** While on, the key set answers 500. */
  fail(on: boolean): Promise<void>;
  /** How many times the key set was fetched. */
  fetches(): Promise<number>;
  stop(): Promise<void>;
}

/** A stand-in OIDC provider as its own process (test/support/jwks-server.process.mjs). */
export async function startJwksServer(): Promise<JwksServer> {
  const child = spawn(process.execPath, [SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /listening (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`jwks server exited with ${String(code)}`)));
  });
  const base = `http://127.0.0.1:${String(port)}`;
  const post = async (path: string, body: unknown): Promise<Response> => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: ${String(res.status)} ${await res.text()}`);
    return res;
  };
  return {
    jwksUrl: `${base}/jwks`,
    sign: async (claims, key = 'current', expiresInS = 3600) =>
      (await post('/sign', { claims, key, expiresInS })).text(),
    rotate: async (drop = false) => ((await (await post('/rotate', { drop })).json()) as { kid: string }).kid,
    fail: async (on) => {
      await post('/fail', { on });
    },
    fetches: async () => ((await (await fetch(`${base}/stats`)).json()) as { fetches: number }).fetches,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
