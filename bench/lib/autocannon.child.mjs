// Child process of bench/lib/load.mjs when wrk is not installed: runs one
// autocannon load described by argv[2] (JSON) and prints one JSON summary line.
import autocannon from 'autocannon';

const spec = JSON.parse(process.argv[2]);
// Sent on every request (e.g. a bearer token).
const headers = spec.headers ?? {};
let n = 0;
const requests =
  spec.kind === 'static'
    ? [{ method: 'GET', path: spec.path, headers }]
    : spec.kind === 'randomId'
      ? [
          {
            method: 'GET',
            headers,
            setupRequest: (r) => ({ ...r, path: `${spec.path}${1 + Math.floor(Math.random() * spec.maxId)}` }),
          },
        ]
      : [
          {
            method: 'POST',
            path: '/users',
            headers: { 'content-type': 'application/json', ...headers },
            setupRequest: (r) => {
              n++;
              return {
                ...r,
                body: JSON.stringify({ name: `Bench User ${n}`, email: `bench.${spec.token}.${n}@example.org` }),
              };
            },
          },
        ];

const result = await autocannon({
  url: spec.base,
  connections: spec.connections,
  duration: spec.seconds,
  timeout: 5,
  requests,
});
const seconds = result.duration;
process.stdout.write(
  `${JSON.stringify({
    generator: 'autocannon',
    requests: result.requests.total,
    seconds,
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts + result.non2xx,
  })}\n`,
);
