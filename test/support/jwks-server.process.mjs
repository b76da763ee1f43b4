// A stand-in identity provider as its own process: it publishes a JSON Web
// Key Set (what Keycloak, Auth0 or Entra ID serve) and signs tokens with its
// keys on request, so tests exercise key rotation and provider outages over
// real HTTP. Prints `listening <port>` once ready.
//
//   GET  /jwks                 the published set (counted in /stats)
//   POST /sign {claims, key}   a token; key "current" (default), "previous", "retired" (dropped) or "unpublished"
//   POST /rotate {drop}        a new current key (new kid); drop: also unpublish the older ones
//   POST /fail {on}            /jwks answers 500 while on
//   GET  /stats                {fetches}
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createServer } from 'node:http';

const alg = process.env.JWKS_ALG ?? 'RS256';

async function newKey() {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, public: { ...jwk, kid, alg, use: 'sig' } };
}

let published = [await newKey()];
let retired = [];
const unpublished = await newKey();
let failing = false;
let fetches = 0;

const readJson = async (req) => {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text === '' ? {} : JSON.parse(text);
};

const send = (res, status, body, type = 'application/json') => {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

const server = createServer((req, res) => {
  void (async () => {
    if (req.method === 'GET' && req.url === '/jwks') {
      fetches++;
      if (failing) return send(res, 500, { error: 'down' });
      return send(res, 200, { keys: published.map((k) => k.public) });
    }
    if (req.method === 'GET' && req.url === '/stats') return send(res, 200, { fetches });
    if (req.method === 'POST' && req.url === '/fail') {
      failing = (await readJson(req)).on === true;
      return send(res, 200, { failing });
    }
    if (req.method === 'POST' && req.url === '/rotate') {
      const { drop } = await readJson(req);
      const key = await newKey();
      if (drop === true) retired = [...published, ...retired];
      published = drop === true ? [key] : [key, ...published];
      return send(res, 200, { kid: key.public.kid, kids: published.map((k) => k.public.kid) });
    }
    if (req.method === 'POST' && req.url === '/sign') {
      const { claims = {}, key = 'current', expiresInS = 3600 } = await readJson(req);
      const signer =
        key === 'unpublished'
          ? unpublished
          : key === 'retired'
            ? retired[0]
            : key === 'previous'
              ? published[1]
              : published[0];
      if (signer === undefined) return send(res, 409, { error: 'no such key' });
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg, kid: signer.public.kid, typ: 'JWT' })
        .setIssuedAt(now)
        .setExpirationTime(now + expiresInS)
        .sign(signer.privateKey);
      return send(res, 200, token, 'text/plain');
    }
    send(res, 404, { error: 'not found' });
  })().catch((error) => send(res, 500, { error: String(error) }));
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
