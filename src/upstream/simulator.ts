/**
 * Upstream simulator: a JSONPlaceholder-shaped posts and comments service with
 * fault knobs that can be changed at run time, for local runs, tests and
 * benchmarks of the profile aggregation.
 *
 * Data routes (any group's knobs apply to its own routes only):
 * - `GET /users/:id/posts`    -> `SimulatedPost[]`    (group `posts`)
 * - `GET /users/:id/comments` -> `SimulatedComment[]` (group `comments`)
 *
 * Admin routes (never counted, never faulted):
 * - `GET  /__admin/state`  -> {@link SimulatorState}
 * - `PUT  /__admin/faults` with `{ group, ...knobs }` -> merges knobs, answers the state; 400 on a bad body
 * - `POST /__admin/reset`  -> default knobs, zeroed stats, empty request-id ring; answers the state
 *
 * A data request goes through these steps, in order:
 * 1. counted (`requests`, `inFlight`, `maxInFlight`) and its `X-Request-Id` recorded;
 * 2. `outage` -> answered `errorStatus` at once (no latency), counted in `errors`;
 * 3. `reset` -> the socket is reset (TCP RST) without an answer, counted in `resets`;
 * 4. two numbers are drawn from the group's seeded generator: the jitter and the error draw;
 *    one from its separate tail generator: below `tailRate`, the base latency is
 *    `tailLatencyMs` instead of `latencyMs` (so tail knobs never shift the first two draws);
 * 5. with `capacity` > 0, takes one of the group's `capacity` service slots, or waits for
 *    one in a FIFO queue (counted in `queued`, `maxQueued`); the deadline passing in the
 *    queue -> 504, counted in `deadlineCutoffs`; a client gone -> leaves the queue at once;
 * 6. waits the base latency + jitter, holding the slot; when that exceeds what is left of the
 *    request's `X-Deadline-Ms` after the queue, waits only that and answers 504, counted in
 *    `deadlineCutoffs`; then frees the slot;
 * 7. error draw below `errorRate` -> answered `errorStatus`, counted in `errors`;
 * 8. a malformed id -> 400;
 * 9. the JSON body, at once or, with `slowDripMs`, dripped in chunks (cut off at the deadline).
 *
 * Knobs are read on arrival, except `capacity`, which is read at each admission: lowering
 * it holds back the next admissions until enough slots free, raising it admits waiters at once.
 */
import Fastify, { type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A route group whose faults are set together. */
export type RouteGroup = 'posts' | 'comments';
/** What `PUT /__admin/faults` may target: one group or both. */
export type FaultTarget = RouteGroup | 'all';

/** The fault knobs of one route group. */
export interface FaultKnobs {
  /** Fixed delay added before answering, in ms (0..600000). */
  readonly latencyMs: number;
  /** Probability (0..1) that a request's fixed delay is `tailLatencyMs` instead of `latencyMs`; default 0. */
  readonly tailRate: number;
  /** Fixed delay of the requests in the tail (see `tailRate`), in ms (0..600000); jitter is added as usual. */
  readonly tailLatencyMs: number;
  /** Random extra delay, uniformly 0..jitterMs inclusive, in ms (0..600000). */
  readonly jitterMs: number;
  /** Probability (0..1) that a request is answered `errorStatus`. */
  readonly errorRate: number;
  /** Status of simulated errors and of outages (400..599; default 503). */
  readonly errorStatus: number;
  /** `Retry-After` seconds sent with simulated errors and outages; null sends none (0..86400). */
  readonly retryAfterS: number | null;
  /** Every request is answered `errorStatus` immediately, skipping latency. */
  readonly outage: boolean;
  /** Every request's connection is reset (TCP RST) without an answer: ECONNRESET on the client. */
  readonly reset: boolean;
  /** When > 0, headers go out at once and the body follows in 10 chunks, each after this many ms (0..600000). */
  readonly slowDripMs: number;
  /**
   * Requests of the group in their latency wait at once (0..100000; 0, the default, is unlimited).
   * The others wait in a FIFO queue, so the latency seen grows with load; the body send or drip
   * holds no slot. Read at each admission, unlike the other knobs.
   */
  readonly capacity: number;
  /** Seed of the group's generators (uint32). Setting it, even to the same value, restarts their sequences. */
  readonly seed: number;
}

/** A partial update of the knobs; `PUT /__admin/faults` takes `{ group, ...FaultPatch }`. */
export type FaultPatch = Partial<FaultKnobs>;

/** Counters of one route group since start or the last reset. */
export interface GroupStats {
  /** Requests received. */
  readonly requests: number;
  /** Requests currently open, queued ones included (a gauge: a reset does not clear it). */
  readonly inFlight: number;
  /** Highest `inFlight` seen; a reset sets it to the current `inFlight`. */
  readonly maxInFlight: number;
  /** Requests currently waiting for a service slot (see `capacity`; a gauge like `inFlight`). */
  readonly queued: number;
  /** Highest `queued` seen; a reset sets it to the current `queued`. */
  readonly maxQueued: number;
  /** Simulated error answers (error rate and outage). */
  readonly errors: number;
  /** Connections reset by the `reset` knob. */
  readonly resets: number;
  /** Requests given up at their `X-Deadline-Ms` (504 in the queue or the latency wait, or cut off mid-drip). */
  readonly deadlineCutoffs: number;
}

/** What `GET /__admin/state` answers. */
export interface SimulatorState {
  readonly knobs: Readonly<Record<RouteGroup, FaultKnobs>>;
  readonly stats: Readonly<Record<RouteGroup, GroupStats>>;
  /** `X-Request-Id` of the last {@link REQUEST_ID_RING_SIZE} data requests that carried one, oldest first. */
  readonly requestIds: readonly string[];
}

/** A post, as `GET /users/:id/posts` answers it. */
export interface SimulatedPost {
  readonly userId: number;
  readonly id: number;
  readonly title: string;
  readonly body: string;
}

/** A comment, as `GET /users/:id/comments` answers it. */
export interface SimulatedComment {
  readonly postId: number;
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly body: string;
}

/** Options of {@link startSimulator}. */
export interface SimulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string;
  /** Port; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Fastify's logger option; default false (off). */
  readonly logger?: FastifyServerOptions['logger'];
  /** Initial (and after-reset) seed of both groups' generators; default 1. */
  readonly seed?: number;
}

/** A running simulator. */
export interface SimulatorHandle {
  /** Base URL to connect to, e.g. `http://127.0.0.1:4010` (a wildcard host is reported as loopback). */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops every open connection, in-flight requests included. */
  close(): Promise<void>;
}

/** How many request ids the ring keeps. */
export const REQUEST_ID_RING_SIZE = 1000;
/** Number of body chunks when `slowDripMs` is set. */
export const DRIP_CHUNKS = 10;
/** Largest user id served (ids times 100 stay exact in JSON numbers). */
export const MAX_USER_ID = 999_999_999_999;

const GROUPS: readonly RouteGroup[] = ['posts', 'comments'];
const MAX_DELAY_MS = 600_000;
const MAX_CAPACITY = 100_000;
/** Longest delay `setTimeout` honours; a longer queue deadline counts as none. */
const MAX_TIMER_MS = 2_147_483_647;
/** Mixed into the seed of the tail generator, so it does not replay the main one. */
const TAIL_SEED_SALT = 0x5bd1e995;

const zeroStats = (): Mutable<GroupStats> => ({
  requests: 0,
  inFlight: 0,
  maxInFlight: 0,
  queued: 0,
  maxQueued: 0,
  errors: 0,
  resets: 0,
  deadlineCutoffs: 0,
});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Starts the simulator and resolves once it listens. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const host = options.host ?? '127.0.0.1';
  const initialSeed = options.seed ?? 1;
  if (!isUint32(initialSeed)) throw new RangeError('seed must be an integer between 0 and 4294967295');
  const defaults: FaultKnobs = {
    latencyMs: 0,
    tailRate: 0,
    tailLatencyMs: 0,
    jitterMs: 0,
    errorRate: 0,
    errorStatus: 503,
    retryAfterS: null,
    outage: false,
    reset: false,
    slowDripMs: 0,
    capacity: 0,
    seed: initialSeed,
  };
  const state = new SimulatorCore(defaults);

  // forceCloseConnections: close() must not wait for requests parked in a long latency or drip.
  const app = Fastify({ logger: options.logger ?? false, forceCloseConnections: true });

  app.get<{ Params: { id: string } }>('/users/:id/posts', (request, reply) =>
    state.serve('posts', request, reply, simulatedPosts),
  );
  app.get<{ Params: { id: string } }>('/users/:id/comments', (request, reply) =>
    state.serve('comments', request, reply, simulatedComments),
  );

  app.get('/__admin/state', async () => state.snapshot());
  app.put('/__admin/faults', async (request, reply) => {
    const parsed = parseFaultBody(request.body);
    if (typeof parsed === 'string') return reply.code(400).send(problem(400, parsed));
    state.apply(parsed.target, parsed.patch);
    return state.snapshot();
  });
  app.post('/__admin/reset', async () => {
    state.reset();
    return state.snapshot();
  });

  await app.listen({ host, port: options.port ?? 0 });
  const { port } = app.server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${String(port)}`,
    port,
    close: () => app.close(),
  };
}

/** Knobs, counters and generators shared by all requests of one simulator. */
class SimulatorCore {
  private readonly knobs: Record<RouteGroup, FaultKnobs>;
  private readonly stats: Record<RouteGroup, Mutable<GroupStats>>;
  private readonly random: Record<RouteGroup, () => number>;
  private readonly tailRandom: Record<RouteGroup, () => number>;
  private readonly slots: Record<RouteGroup, ServiceSlots>;
  private requestIds: string[] = [];

  constructor(private readonly defaults: FaultKnobs) {
    this.knobs = { posts: defaults, comments: defaults };
    this.stats = { posts: zeroStats(), comments: zeroStats() };
    this.random = { posts: mulberry32(defaults.seed), comments: mulberry32(defaults.seed) };
    this.tailRandom = { posts: tailGenerator(defaults.seed), comments: tailGenerator(defaults.seed) };
    this.slots = { posts: this.newSlots('posts'), comments: this.newSlots('comments') };
  }

  snapshot(): SimulatorState {
    return {
      knobs: { ...this.knobs },
      stats: { posts: { ...this.stats.posts }, comments: { ...this.stats.comments } },
      requestIds: [...this.requestIds],
    };
  }

  apply(target: FaultTarget, patch: FaultPatch): void {
    for (const group of target === 'all' ? GROUPS : [target]) {
      this.knobs[group] = { ...this.knobs[group], ...patch };
      if (patch.seed !== undefined) {
        this.random[group] = mulberry32(patch.seed);
        this.tailRandom[group] = tailGenerator(patch.seed);
      }
      // A raised (or lifted) capacity admits waiters now, before the answer's snapshot.
      this.slots[group].admit();
    }
  }

  reset(): void {
    for (const group of GROUPS) {
      this.knobs[group] = this.defaults;
      this.random[group] = mulberry32(this.defaults.seed);
      this.tailRandom[group] = tailGenerator(this.defaults.seed);
      this.slots[group].admit();
      // In-flight and queued requests will still decrement; keep the gauges true.
      const { inFlight, queued } = this.stats[group];
      this.stats[group] = { ...zeroStats(), inFlight, maxInFlight: inFlight, queued, maxQueued: queued };
    }
    this.requestIds = [];
  }

  async serve(
    group: RouteGroup,
    request: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
    build: (userId: number) => unknown,
  ): Promise<FastifyReply> {
    const arrivedAt = performance.now();
    // Knobs as they were on arrival: a change mid-request applies to the next one.
    const knobs = this.knobs[group];
    const res = reply.raw;
    const stats = (): Mutable<GroupStats> => this.stats[group];
    this.enter(group);
    // 'close' fires once the answer is flushed or the connection is gone, whichever path answered.
    const closed = new AbortController();
    res.once('close', () => {
      stats().inFlight--;
      closed.abort();
    });
    this.recordRequestId(request.headers['x-request-id']);

    if (knobs.outage) {
      stats().errors++;
      return sendFault(reply, knobs);
    }
    if (knobs.reset) {
      stats().resets++;
      reply.hijack();
      res.socket?.resetAndDestroy();
      return reply;
    }

    // Always draw all three, so a seed gives the same sequences whatever the knobs.
    const random = this.random[group];
    const jitter = Math.floor(random() * (knobs.jitterMs + 1));
    const failing = random() < knobs.errorRate;
    const inTail = this.tailRandom[group]() < knobs.tailRate;
    const delay = (inTail ? knobs.tailLatencyMs : knobs.latencyMs) + jitter;
    const deadlineMs = parseDeadline(request.headers['x-deadline-ms']);

    const slots = this.slots[group];
    // Time spent in the queue; 0 when a slot was free, so the unlimited path compares as before.
    let queuedMs = 0;
    if (!slots.tryTake()) {
      const maxWaitMs = deadlineMs !== undefined && deadlineMs <= MAX_TIMER_MS ? deadlineMs : undefined;
      const admission = await slots.wait(maxWaitMs, closed.signal);
      if (admission === 'gone') return abandon(reply);
      queuedMs = performance.now() - arrivedAt;
      if (admission === 'expired') {
        stats().deadlineCutoffs++;
        const waited = `${String(Math.round(queuedMs))} ms`;
        return reply.code(504).send(problem(504, `the deadline passed after ${waited} waiting for a service slot`));
      }
    }
    const leftMs = deadlineMs === undefined ? undefined : Math.max(0, deadlineMs - queuedMs);
    const served = await serveInSlot(slots, delay, leftMs, closed.signal);
    if (served === 'gone') return abandon(reply);
    if (served === 'cutoff') {
      stats().deadlineCutoffs++;
      return reply.code(504).send(problem(504, `simulated latency of ${String(delay)} ms exceeds the deadline`));
    }

    if (failing) {
      stats().errors++;
      return sendFault(reply, knobs);
    }

    const userId = parseUserId(request.params.id);
    if (userId === undefined) {
      return reply.code(400).send(problem(400, `id must be an integer between 1 and ${String(MAX_USER_ID)}`));
    }
    const body = JSON.stringify(build(userId));
    if (knobs.slowDripMs === 0) return reply.type('application/json; charset=utf-8').send(body);

    reply.hijack();
    const deadlineAt = deadlineMs === undefined ? undefined : arrivedAt + deadlineMs;
    const cutOff = await drip(res, body, knobs.slowDripMs, deadlineAt, closed.signal);
    if (cutOff) stats().deadlineCutoffs++;
    return reply;
  }

  private enter(group: RouteGroup): void {
    const stats = this.stats[group];
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
  }

  /** The group's service slots; they keep `queued` and `maxQueued` of the current stats in step. */
  private newSlots(group: RouteGroup): ServiceSlots {
    return new ServiceSlots(
      () => this.knobs[group].capacity,
      (queued) => {
        const stats = this.stats[group];
        stats.queued = queued;
        stats.maxQueued = Math.max(stats.maxQueued, queued);
      },
    );
  }

  private recordRequestId(header: string | string[] | undefined): void {
    const id = Array.isArray(header) ? header[0] : header;
    if (id === undefined) return;
    this.requestIds.push(id);
    if (this.requestIds.length > REQUEST_ID_RING_SIZE) this.requestIds.shift();
  }
}

/** How a wait for a service slot ended. */
type Admission = 'admitted' | 'expired' | 'gone';

/**
 * A group's service slots: a counting semaphore with a FIFO queue whose limit
 * is read at each admission (0: unlimited). Every request takes a slot, with
 * or without a limit, so a limit set later counts those already in service.
 */
class ServiceSlots {
  private busy = 0;
  /** Grant callbacks of the waiters; a Set keeps FIFO order and drops a leaver from the middle. */
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly capacity: () => number,
    private readonly onQueueChange: (queued: number) => void,
  ) {}

  /** Takes a slot when one is free and nobody waits (no jumping the queue). */
  tryTake(): boolean {
    if (this.waiters.size > 0 || !this.hasRoom()) return false;
    this.busy++;
    return true;
  }

  /** Queues for a slot: admitted, `maxWaitMs` passed first (undefined: no limit), or `signal` aborted first. */
  wait(maxWaitMs: number | undefined, signal: AbortSignal): Promise<Admission> {
    if (signal.aborted) return Promise.resolve('gone');
    return new Promise((resolve) => {
      const leave = (admission: Admission): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', gone);
        this.waiters.delete(grant);
        this.onQueueChange(this.waiters.size);
        resolve(admission);
      };
      const grant = (): void => {
        this.busy++;
        leave('admitted');
      };
      const gone = (): void => {
        leave('gone');
      };
      const timer =
        maxWaitMs === undefined
          ? undefined
          : setTimeout(() => {
              leave('expired');
            }, maxWaitMs);
      signal.addEventListener('abort', gone, { once: true });
      this.waiters.add(grant);
      this.onQueueChange(this.waiters.size);
    });
  }

  release(): void {
    this.busy--;
    this.admit();
  }

  /** Hands free slots to the oldest waiters; called on every release and knob change. */
  admit(): void {
    // Deleting the visited entry (grant -> leave) while iterating a Set is safe.
    for (const grant of this.waiters) {
      if (!this.hasRoom()) return;
      grant();
    }
  }

  private hasRoom(): boolean {
    const capacity = this.capacity();
    return capacity === 0 || this.busy < capacity;
  }
}

/**
 * Waits the latency `delayMs` in a slot taken from `slots`, then frees it:
 * 'cutoff' after only `leftMs` when the deadline leaves less (undefined: no
 * deadline), 'gone' as soon as `signal` aborts.
 */
async function serveInSlot(
  slots: ServiceSlots,
  delayMs: number,
  leftMs: number | undefined,
  signal: AbortSignal,
): Promise<'served' | 'cutoff' | 'gone'> {
  const cutoffMs = leftMs !== undefined && delayMs > leftMs ? leftMs : undefined;
  try {
    if ((cutoffMs !== undefined || delayMs > 0) && !(await pause(cutoffMs ?? delayMs, signal))) return 'gone';
    return cutoffMs === undefined ? 'served' : 'cutoff';
  } finally {
    slots.release();
  }
}

/**
 * Writes `body` in {@link DRIP_CHUNKS} chunks `intervalMs` apart. At the
 * deadline the connection is destroyed mid-body (headers are already out, so
 * no status can say so) and true is returned.
 */
async function drip(
  res: ServerResponse,
  body: string,
  intervalMs: number,
  deadlineAt: number | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  const bytes = Buffer.from(body);
  const size = Math.ceil(bytes.length / DRIP_CHUNKS);
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length });
  res.flushHeaders();
  for (let offset = 0; offset < bytes.length; offset += size) {
    const left = deadlineAt === undefined ? Infinity : deadlineAt - performance.now();
    if (intervalMs > left) {
      if (!(await pause(Math.max(0, left), signal))) return false;
      res.destroy();
      return true;
    }
    if (!(await pause(intervalMs, signal))) return false;
    res.write(bytes.subarray(offset, offset + size));
  }
  res.end();
  return false;
}

function sendFault(reply: FastifyReply, knobs: FaultKnobs): FastifyReply {
  if (knobs.retryAfterS !== null) void reply.header('retry-after', String(knobs.retryAfterS));
  return reply.code(knobs.errorStatus).send(problem(knobs.errorStatus, 'simulated fault'));
}

/** The client went away while we waited: nothing left to answer. */
function abandon(reply: FastifyReply): FastifyReply {
  reply.hijack();
  return reply;
}

/** Waits `ms`; false when `signal` aborted first. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function problem(statusCode: number, message: string): { statusCode: number; error: string; message: string } {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** `X-Deadline-Ms`: the caller's remaining budget in ms; anything but a non-negative number is ignored. */
function parseDeadline(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  return Number(value);
}

function parseUserId(raw: string): number | undefined {
  if (!/^\d{1,12}$/.test(raw)) return undefined;
  const id = Number(raw);
  return id >= 1 && id <= MAX_USER_ID ? id : undefined;
}

// ---------------------------------------------------------------------------
// Admin body validation

type KnobRule = (value: unknown) => string | undefined;

const integer =
  (name: string, min: number, max: number): KnobRule =>
  (value) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? undefined
      : `${name} must be an integer between ${String(min)} and ${String(max)}`;

const boolean =
  (name: string): KnobRule =>
  (value) =>
    typeof value === 'boolean' ? undefined : `${name} must be true or false`;

const probability =
  (name: string): KnobRule =>
  (value) =>
    typeof value === 'number' && value >= 0 && value <= 1 ? undefined : `${name} must be a number between 0 and 1`;

const KNOB_RULES: Record<keyof FaultKnobs, KnobRule> = {
  latencyMs: integer('latencyMs', 0, MAX_DELAY_MS),
  tailRate: probability('tailRate'),
  tailLatencyMs: integer('tailLatencyMs', 0, MAX_DELAY_MS),
  jitterMs: integer('jitterMs', 0, MAX_DELAY_MS),
  errorRate: probability('errorRate'),
  errorStatus: integer('errorStatus', 400, 599),
  retryAfterS: (value) =>
    value === null ? undefined : integer('retryAfterS', 0, 86_400)(value)?.concat(', or null for none'),
  outage: boolean('outage'),
  reset: boolean('reset'),
  slowDripMs: integer('slowDripMs', 0, MAX_DELAY_MS),
  capacity: integer('capacity', 0, MAX_CAPACITY),
  seed: integer('seed', 0, 0xffff_ffff),
};

/** The validated body of `PUT /__admin/faults`, or a one-line reason it is invalid. */
function parseFaultBody(body: unknown): { target: FaultTarget; patch: FaultPatch } | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object';
  const { group, ...rest } = body as Record<string, unknown>;
  if (group !== 'posts' && group !== 'comments' && group !== 'all') {
    return 'group must be "posts", "comments" or "all"';
  }
  for (const [key, value] of Object.entries(rest)) {
    if (!Object.hasOwn(KNOB_RULES, key)) {
      return `unknown key "${key}"; allowed: group, ${Object.keys(KNOB_RULES).join(', ')}`;
    }
    const error = KNOB_RULES[key as keyof FaultKnobs](value);
    if (error !== undefined) return error;
  }
  // Every key was checked against its rule above.
  return { target: group, patch: rest };
}

function isUint32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

// ---------------------------------------------------------------------------
// Deterministic data

/** Small fast PRNG (mulberry32): same seed, same sequence of numbers in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The tail generator of a group: its own sequence, so tail knobs leave the jitter and error draws alone. */
function tailGenerator(seed: number): () => number {
  return mulberry32((seed ^ TAIL_SEED_SALT) >>> 0);
}

/** murmur3's finaliser: spreads nearby ids over the whole 32-bit range. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit hash of a user id (up to {@link MAX_USER_ID}) and a salt per kind of record. */
function hashId(userId: number, salt: number): number {
  const high = Math.floor(userId / 0x1_0000_0000);
  return fmix32(userId ^ fmix32(high + salt));
}

const WORDS = [
  'lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do',
  'eiusmod', 'tempor', 'incididunt', 'labore', 'dolore', 'magna', 'aliqua', 'enim', 'minim', 'veniam',
  'quis', 'nostrud', 'exercitation', 'ullamco', 'laboris', 'nisi', 'aliquip', 'commodo', 'consequat', 'duis',
  'aute', 'irure', 'voluptate', 'velit', 'esse', 'cillum', 'fugiat', 'nulla', 'pariatur', 'excepteur',
]; // prettier-ignore

const pick = (random: () => number, count: number): number => Math.floor(random() * count);

function words(random: () => number, min: number, max: number): string {
  const count = min + pick(random, max - min + 1);
  return Array.from({ length: count }, () => WORDS[pick(random, WORDS.length)] ?? 'lorem').join(' ');
}

function paragraph(random: () => number): string {
  const lines = 2 + pick(random, 3);
  return Array.from({ length: lines }, () => words(random, 5, 10)).join('\n');
}

/** The posts the simulator serves for `userId`: 3 to 5, ids `userId * 100 + 1..n`, always the same. */
export function simulatedPosts(userId: number): SimulatedPost[] {
  const random = mulberry32(hashId(userId, 0x9e3779b9));
  const count = 3 + pick(random, 3);
  return Array.from({ length: count }, (_, i) => ({
    userId,
    id: userId * 100 + i + 1,
    title: words(random, 3, 7),
    body: paragraph(random),
  }));
}

/**
 * The comments the simulator serves for `userId`: 2 to 6, ids `userId * 100 + 1..n`,
 * each on one of that user's posts, always the same.
 */
export function simulatedComments(userId: number): SimulatedComment[] {
  const postIds = simulatedPosts(userId).map((post) => post.id);
  const random = mulberry32(hashId(userId, 0x85ebca6b));
  const count = 2 + pick(random, 5);
  return Array.from({ length: count }, (_, i) => ({
    postId: postIds[pick(random, postIds.length)] ?? userId * 100 + 1,
    id: userId * 100 + i + 1,
    name: words(random, 2, 5),
    email: `${WORDS[pick(random, WORDS.length)] ?? 'user'}.${WORDS[pick(random, WORDS.length)] ?? 'name'}${String(i + 1)}@example.test`,
    body: paragraph(random),
  }));
}
