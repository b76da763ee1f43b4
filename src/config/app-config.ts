import type { z } from 'zod';
import {
  DEPENDENCIES,
  POLICY_SETTINGS,
  type Dependency,
  type Env,
  type PolicySetting,
  type PolicyValue,
} from './env.schema.js';

/** Defaults that differ for one dependency (its prefixed variable still wins). */
const DEPENDENCY_DEFAULTS: Partial<Record<Dependency, Partial<PolicySettings>>> = {
  // Mail delivery retries across minutes, not milliseconds.
  smtp: {
    RETRY_MAX_ATTEMPTS: 5,
    RETRY_BASE_DELAY_MS: 1000,
    RETRY_MAX_DELAY_MS: 60_000,
    TIMEOUT_MS: 30_000,
    DEADLINE_MS: 120_000,
  },
  // Idempotent reads with a long tail: a second attempt after the p95 cuts it (see README).
  posts: { HEDGE_ENABLED: true },
  comments: { HEDGE_ENABLED: true },
};

/** Resolved resilience settings of one dependency (defaults overlaid with its prefixed overrides). */
export type PolicySettings = {
  readonly [K in PolicySetting]: z.output<ReturnType<(typeof POLICY_SETTINGS)[K]['schema']>>;
};

export type DatabaseConfig =
  | { readonly mode: 'external'; readonly url: string; readonly pool: PoolConfig; readonly migrationsRun: boolean }
  | {
      readonly mode: 'embedded';
      readonly dataDir: string;
      readonly port: number;
      readonly pool: PoolConfig;
      readonly migrationsRun: boolean;
    };

export interface PoolConfig {
  readonly size: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /**
   * Hot reads as named prepared statements. Off for servers whose connections share one
   * session (the embedded PGlite; PgBouncer in transaction mode), where a second connection
   * preparing the same name fails.
   */
  readonly namedStatements: boolean;
}

/**
 * The typed, validated configuration. Injected by class; built only by
 * `loadConfig`, so nothing else reads `process.env`.
 */
export class AppConfig {
  readonly env: Env['NODE_ENV'];
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimitBytes: number;
    readonly corsOrigins: readonly string[] | '*' | null;
    readonly trustProxy: string | false;
    readonly docsEnabled: boolean;
  };
  readonly log: {
    readonly level: Env['LOG_LEVEL'];
    /** One line per request; off by default in production. */
    readonly access: boolean;
    /** Requests at least this slow are logged even with the access log off (0 = never). */
    readonly slowMs: number;
  };
  readonly tracing: {
    /** OTLP/HTTP base URL (`/v1/traces` is appended); undefined: tracing off, nothing loaded. */
    readonly endpoint: string | undefined;
    readonly serviceName: string;
    /** Share of new traces sampled; a caller's sampled flag is followed. */
    readonly sampleRatio: number;
  };
  readonly database: DatabaseConfig;
  readonly readiness: { readonly dbTimeoutMs: number };
  readonly shutdown: { readonly drainDelayMs: number; readonly graceMs: number };
  /** Worker processes behind one port (node:cluster); 1 runs the service in this process alone. */
  readonly cluster: { readonly workers: number };
  readonly adminToken: string | undefined;
  readonly auth: {
    /** An OIDC provider's key set; undefined: the service issues and verifies its own tokens. */
    readonly jwksUrl: string | undefined;
    readonly issuer: string;
    readonly audience: string;
    readonly clockToleranceS: number;
    /** Least time between two fetches of the key set caused by an unknown `kid`. */
    readonly jwksCooldownMs: number;
    /** Where the local issuer keeps its key pair. */
    readonly keysDir: string;
    /** Whether reads (GET of users, profiles, streams) stay open to anonymous callers. */
    readonly publicReads: boolean;
    /** Verified tokens remembered until they expire (0: verify every request). */
    readonly tokenCacheSize: number;
  };
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key, so deployments (and test runs) sharing a server stay apart. */
  readonly redisKeyPrefix: string;
  readonly upstreams: {
    /** Base URLs; undefined means "start the bundled simulator". */
    readonly postsUrl: string | undefined;
    readonly commentsUrl: string | undefined;
    readonly maxSockets: number;
  };
  readonly profiles: {
    readonly deadlineMs: number;
    readonly batchConcurrency: number;
    readonly cacheTtlMs: number;
    readonly staleTtlMs: number;
  };
  readonly smtp: {
    /** undefined: the development transport writes messages to `outboxDir` and the log. */
    readonly url: string | undefined;
    readonly from: string;
    readonly tlsRejectUnauthorized: boolean;
    readonly requireTls: boolean;
    readonly outboxDir: string;
  };
  readonly notifications: {
    readonly concurrency: number;
    readonly pollIntervalMs: number;
    readonly leaseMs: number;
    readonly workerEnabled: boolean;
  };
  readonly workerPool: {
    /** Worker threads; 0 means one less than the cores (at least 1). */
    readonly size: number;
    readonly maxQueue: number;
    readonly processDataBodyLimitBytes: number;
  };
  readonly sse: { readonly replaySize: number; readonly heartbeatMs: number; readonly maxBufferBytes: number };
  readonly chat: {
    /** Per-connection token bucket: frames per second and burst. */
    readonly ratePerSec: number;
    readonly rateBurst: number;
    readonly pingIntervalMs: number;
    /** Unsent bytes a WebSocket may hold before it is closed with 1013. */
    readonly maxBufferedBytes: number;
    /** Whether a connection without a token may post (as guest-xxxxxx). */
    readonly guests: boolean;
    /** Lease of an instance's presence in Redis: renewed every third of it, lapsed (members gone) after it. */
    readonly presenceTtlS: number;
    /** Rooms with more members get coalesced presence summaries instead of a frame per join or leave. */
    readonly presenceEventsMax: number;
    /** How often a large room's presence summary goes out (when it changed). */
    readonly presenceIntervalMs: number;
  };
  readonly rateLimit: {
    readonly rate: number;
    readonly capacity: number;
    readonly enabled: boolean;
    /** The smaller budget of anonymous callers on routes that admit them (`@AnonymousBudget`). */
    readonly anonymousRate: number;
    readonly anonymousCapacity: number;
  };
  readonly loadShedding: {
    readonly maxEventLoopDelayMs: number;
    readonly maxEventLoopUtilization: number;
    readonly maxHeapBytes: number;
    readonly retryAfterSeconds: number;
  };
  private readonly policyDefaults: PolicySettings;
  private readonly policyOverrides: ReadonlyMap<Dependency, Partial<PolicySettings>>;

  constructor(env: Env) {
    this.env = env.NODE_ENV;
    const origins = env.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter((o) => o.length > 0);
    this.http = {
      host: env.HOST,
      port: env.PORT,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      corsOrigins: origins.length === 0 ? null : origins.includes('*') ? '*' : origins,
      trustProxy: env.TRUST_PROXY === '' || env.TRUST_PROXY === 'false' ? false : env.TRUST_PROXY,
      docsEnabled: env.DOCS_ENABLED,
    };
    this.log = {
      level: env.LOG_LEVEL,
      // As uvicorn in production: no line per request unless asked; 5xx and slow ones still are.
      access: env.LOG_ACCESS ?? env.NODE_ENV !== 'production',
      slowMs: env.LOG_SLOW_MS,
    };
    this.tracing = {
      endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
      serviceName: env.OTEL_SERVICE_NAME,
      sampleRatio: env.OTEL_TRACES_SAMPLER_RATIO,
    };
    const pool: PoolConfig = {
      size: env.DB_POOL_SIZE,
      connectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: env.DB_IDLE_TIMEOUT_MS,
      statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
      // The embedded PGlite serves every connection from one backend session.
      namedStatements: env.DB_NAMED_STATEMENTS && env.DATABASE_URL !== undefined,
    };
    this.database =
      env.DATABASE_URL !== undefined
        ? { mode: 'external', url: env.DATABASE_URL, pool, migrationsRun: env.DB_MIGRATIONS_RUN }
        : {
            mode: 'embedded',
            dataDir: env.PGLITE_DATA_DIR,
            port: env.PGLITE_PORT,
            pool,
            migrationsRun: env.DB_MIGRATIONS_RUN,
          };
    this.readiness = { dbTimeoutMs: env.READY_DB_TIMEOUT_MS };
    this.shutdown = { drainDelayMs: env.SHUTDOWN_DRAIN_DELAY_MS, graceMs: env.SHUTDOWN_GRACE_MS };
    this.cluster = { workers: env.WEB_CONCURRENCY };
    this.adminToken = env.ADMIN_TOKEN;
    this.auth = {
      jwksUrl: env.AUTH_JWKS_URL,
      issuer: env.AUTH_ISSUER ?? 'nest-async-api',
      audience: env.AUTH_AUDIENCE,
      clockToleranceS: env.AUTH_CLOCK_TOLERANCE_S,
      jwksCooldownMs: env.AUTH_JWKS_COOLDOWN_MS,
      keysDir: env.AUTH_KEYS_DIR,
      publicReads: env.AUTH_PUBLIC_READS,
      tokenCacheSize: env.AUTH_TOKEN_CACHE_SIZE,
    };
    this.redisUrl = env.REDIS_URL;
    this.redisKeyPrefix = env.REDIS_KEY_PREFIX;
    this.upstreams = {
      postsUrl: env.POSTS_SERVICE_URL,
      commentsUrl: env.COMMENTS_SERVICE_URL,
      maxSockets: env.UPSTREAM_MAX_SOCKETS,
    };
    this.profiles = {
      deadlineMs: env.PROFILE_DEADLINE_MS,
      batchConcurrency: env.PROFILE_BATCH_CONCURRENCY,
      cacheTtlMs: env.PROFILE_CACHE_TTL_MS,
      staleTtlMs: env.PROFILE_STALE_TTL_MS,
    };
    this.smtp = {
      url: env.SMTP_URL,
      from: env.SMTP_FROM,
      tlsRejectUnauthorized: env.SMTP_TLS_REJECT_UNAUTHORIZED,
      requireTls: env.SMTP_REQUIRE_TLS,
      outboxDir: env.MAIL_OUTBOX_DIR,
    };
    this.notifications = {
      concurrency: env.NOTIFY_CONCURRENCY,
      pollIntervalMs: env.NOTIFY_POLL_INTERVAL_MS,
      leaseMs: env.NOTIFY_LEASE_MS,
      workerEnabled: env.NOTIFY_WORKER_ENABLED,
    };
    this.workerPool = {
      size: env.WORKER_POOL_SIZE,
      maxQueue: env.WORKER_POOL_MAX_QUEUE,
      processDataBodyLimitBytes: env.PROCESS_DATA_BODY_LIMIT_BYTES,
    };
    this.sse = {
      replaySize: env.EVENTS_REPLAY_SIZE,
      heartbeatMs: env.EVENTS_HEARTBEAT_MS,
      maxBufferBytes: env.SSE_MAX_BUFFER_BYTES,
    };
    this.chat = {
      ratePerSec: env.CHAT_RATE_PER_SEC,
      rateBurst: env.CHAT_RATE_BURST,
      pingIntervalMs: env.CHAT_PING_INTERVAL_MS,
      maxBufferedBytes: env.CHAT_MAX_BUFFERED_BYTES,
      guests: env.CHAT_GUESTS ?? env.AUTH_JWKS_URL === undefined,
      presenceTtlS: env.CHAT_PRESENCE_TTL_S,
      presenceEventsMax: env.CHAT_PRESENCE_EVENTS_MAX,
      presenceIntervalMs: env.CHAT_PRESENCE_INTERVAL_MS,
    };
    this.rateLimit = {
      rate: env.RATE_LIMIT_RATE,
      capacity: env.RATE_LIMIT_CAPACITY,
      enabled: env.RATE_LIMIT_RATE > 0 && env.RATE_LIMIT_CAPACITY > 0,
      anonymousRate: env.RATE_LIMIT_ANONYMOUS_RATE,
      anonymousCapacity: env.RATE_LIMIT_ANONYMOUS_CAPACITY,
    };
    this.loadShedding = {
      maxEventLoopDelayMs: env.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS,
      maxEventLoopUtilization: env.LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION,
      maxHeapBytes: env.LOAD_SHED_MAX_HEAP_BYTES,
      retryAfterSeconds: env.LOAD_SHED_RETRY_AFTER_S,
    };
    const keys = Object.keys(POLICY_SETTINGS) as PolicySetting[];
    const raw = env as unknown as Readonly<Record<string, PolicyValue | undefined>>;
    this.policyDefaults = Object.fromEntries(
      keys.map((k) => [k, raw[k] ?? (POLICY_SETTINGS[k].schema(k).parse(POLICY_SETTINGS[k].fallback) as PolicyValue)]),
    ) as PolicySettings;
    this.policyOverrides = new Map(
      DEPENDENCIES.map((dep) => [
        dep,
        Object.fromEntries(
          keys.flatMap((k) => {
            const value = raw[`${dep.toUpperCase()}_${k}`];
            return value === undefined ? [] : [[k, value]];
          }),
        ) as Partial<PolicySettings>,
      ]),
    );
  }

  /** Resilience settings for a named dependency: its prefixed overrides over the defaults. */
  policy(name: string): PolicySettings {
    const overrides = this.policyOverrides.get(name as Dependency) ?? {};
    return { ...this.policyDefaults, ...(DEPENDENCY_DEFAULTS[name as Dependency] ?? {}), ...overrides };
  }
}
