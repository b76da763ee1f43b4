import { z } from 'zod';

const int = (name: string, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, { message: `${name} must be an integer between ${min} and ${max}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { message: `${name} must be an integer between ${min} and ${max}` });

const bool = (name: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), {
      message: `${name} must be true or false`,
    })
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A URL with one of the given schemes, e.g. `urlOf('DATABASE_URL', 'postgres', 'postgresql')`. */
const urlOf = (name: string, ...schemes: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (v) => {
        try {
          return schemes.includes(new URL(v).protocol.slice(0, -1));
        } catch {
          return false;
        }
      },
      { message: `${name} must be a ${schemes.map((p) => `${p}://`).join(' or ')} URL` },
    );

/** Empty strings count as unset, so `FOO=` in a .env file means "use the default". */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

const withDefault = <T extends z.ZodType>(schema: T, fallback: string) =>
  z.preprocess((v) => (v === undefined || v === '' ? fallback : v), schema);

const ratio = (name: string) =>
  z
    .string()
    .trim()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, { message: `${name} must be a number between 0 and 1` })
    .transform(Number);

const decimal = (name: string, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, { message: `${name} must be a number between ${min} and ${max}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { message: `${name} must be a number between ${min} and ${max}` });

/**
 * Resilience settings: each is a default for every dependency, and the same
 * name prefixed by a dependency (`POSTS_BREAKER_COOLDOWN_MS`) overrides it
 * for that one.
 */
export const POLICY_SETTINGS = {
  BREAKER_FAILURES: { fallback: '5', schema: (n: string) => int(n, 0, 1_000_000) },
  BREAKER_FAILURE_RATIO: { fallback: '0.5', schema: ratio },
  BREAKER_MIN_CALLS: { fallback: '20', schema: (n: string) => int(n, 1, 1_000_000) },
  BREAKER_WINDOW_MS: { fallback: '10000', schema: (n: string) => int(n, 100, 3_600_000) },
  BREAKER_SLOW_CALL_MS: { fallback: '0', schema: (n: string) => int(n, 0, 3_600_000) },
  BREAKER_COOLDOWN_MS: { fallback: '30000', schema: (n: string) => int(n, 1, 3_600_000) },
  BREAKER_HALF_OPEN_PROBES: { fallback: '1', schema: (n: string) => int(n, 1, 1000) },
  RETRY_MAX_ATTEMPTS: { fallback: '3', schema: (n: string) => int(n, 1, 100) },
  RETRY_BASE_DELAY_MS: { fallback: '100', schema: (n: string) => int(n, 0, 600_000) },
  RETRY_MAX_DELAY_MS: { fallback: '2000', schema: (n: string) => int(n, 0, 600_000) },
  RETRY_BUDGET_RATIO: { fallback: '0.2', schema: ratio },
  TIMEOUT_MS: { fallback: '2000', schema: (n: string) => int(n, 1, 3_600_000) },
  DEADLINE_MS: { fallback: '10000', schema: (n: string) => int(n, 1, 3_600_000) },
  BULKHEAD_MAX_CONCURRENT: { fallback: '100', schema: (n: string) => int(n, 1, 1_000_000) },
  BULKHEAD_MAX_QUEUE: { fallback: '100', schema: (n: string) => int(n, 0, 1_000_000) },
  BULKHEAD_QUEUE_TIMEOUT_MS: { fallback: '1000', schema: (n: string) => int(n, 1, 3_600_000) },
  // Another instance's breaker opening opens this one too (with Redis).
  BREAKER_SHARED: { fallback: 'true', schema: bool },
  HEDGE_ENABLED: { fallback: 'false', schema: bool },
  // 0: the recent p95 of the dependency's answer times.
  HEDGE_DELAY_MS: { fallback: '0', schema: (n: string) => int(n, 0, 600_000) },
  HEDGE_BUDGET_PERCENT: { fallback: '10', schema: (n: string) => int(n, 0, 100) },
  CONCURRENCY: {
    fallback: 'static',
    schema: (n: string) =>
      z.enum(['static', 'adaptive'], { message: `${n} must be static (the bulkhead) or adaptive (a learnt limit)` }),
  },
  ADAPTIVE_MIN_LIMIT: { fallback: '3', schema: (n: string) => int(n, 1, 100_000) },
  ADAPTIVE_MAX_LIMIT: { fallback: '200', schema: (n: string) => int(n, 1, 100_000) },
  ADAPTIVE_INITIAL_LIMIT: { fallback: '20', schema: (n: string) => int(n, 1, 100_000) },
  ADAPTIVE_SMOOTHING: { fallback: '0.2', schema: (n: string) => decimal(n, 0.01, 1) },
  ADAPTIVE_TOLERANCE: { fallback: '1.5', schema: (n: string) => decimal(n, 1, 100) },
  ADAPTIVE_WINDOW_MS: { fallback: '500', schema: (n: string) => int(n, 10, 600_000) },
  ADAPTIVE_PROBE_INTERVAL_MS: { fallback: '60000', schema: (n: string) => int(n, 1000, 86_400_000) },
} as const;

export type PolicySetting = keyof typeof POLICY_SETTINGS;

/** Dependencies with a named policy; each may override any POLICY_SETTINGS key with its prefix. */
export const DEPENDENCIES = ['posts', 'comments', 'smtp', 'database'] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

const policyDefaults = Object.fromEntries(
  Object.entries(POLICY_SETTINGS).map(([key, { fallback, schema }]) => [key, withDefault(schema(key), fallback)]),
) as unknown as { [K in PolicySetting]: ReturnType<(typeof POLICY_SETTINGS)[K]['schema']> };

const policyOverrides = Object.fromEntries(
  DEPENDENCIES.flatMap((dep) =>
    Object.entries(POLICY_SETTINGS).map(([key, { schema }]) => {
      const name = `${dep.toUpperCase()}_${key}`;
      return [name, optional(schema(name))];
    }),
  ),
) as Record<string, z.ZodType<PolicyValue | undefined>>;

/** A resolved policy setting: a number, a flag or a mode. */
export type PolicyValue = number | boolean | string;

/**
 * Every environment variable the service reads, with its default. The names are
 * the public interface: keep them stable.
 */
export const envSchema = z
  .object({
    NODE_ENV: withDefault(
      z.enum(['development', 'production', 'test'], { message: 'NODE_ENV must be development, production or test' }),
      'development',
    ),
    HOST: withDefault(z.string().trim().min(1, { message: 'HOST must not be empty' }), '0.0.0.0'),
    PORT: withDefault(int('PORT', 0, 65535), '3000'),
    LOG_LEVEL: withDefault(
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
      }),
      'info',
    ),
    // Unset: on, except with NODE_ENV=production (see AppConfig.log).
    LOG_ACCESS: optional(bool('LOG_ACCESS')),
    LOG_SLOW_MS: withDefault(int('LOG_SLOW_MS', 0, 3_600_000), '1000'),
    OTEL_EXPORTER_OTLP_ENDPOINT: optional(urlOf('OTEL_EXPORTER_OTLP_ENDPOINT', 'http', 'https')),
    OTEL_SERVICE_NAME: withDefault(z.string().trim().min(1), 'nest-async-api'),
    OTEL_TRACES_SAMPLER_RATIO: withDefault(ratio('OTEL_TRACES_SAMPLER_RATIO'), '1'),
    BODY_LIMIT_BYTES: withDefault(int('BODY_LIMIT_BYTES', 1, 1024 * 1024 * 1024), String(1024 * 1024)),
    CORS_ORIGINS: withDefault(z.string().trim(), ''),
    TRUST_PROXY: withDefault(z.string().trim(), ''),
    DOCS_ENABLED: withDefault(bool('DOCS_ENABLED'), 'true'),
    ADMIN_TOKEN: optional(z.string().min(16, { message: 'ADMIN_TOKEN must be at least 16 characters' })),

    AUTH_JWKS_URL: optional(urlOf('AUTH_JWKS_URL', 'http', 'https')),
    AUTH_ISSUER: optional(z.string().trim().min(1)),
    AUTH_AUDIENCE: withDefault(
      z.string().trim().min(1, { message: 'AUTH_AUDIENCE must not be empty' }),
      'nest-async-api',
    ),
    AUTH_CLOCK_TOLERANCE_S: withDefault(int('AUTH_CLOCK_TOLERANCE_S', 0, 3600), '30'),
    AUTH_JWKS_COOLDOWN_MS: withDefault(int('AUTH_JWKS_COOLDOWN_MS', 0, 3_600_000), '30000'),
    AUTH_KEYS_DIR: withDefault(z.string().trim().min(1), './data/auth'),
    AUTH_PUBLIC_READS: withDefault(bool('AUTH_PUBLIC_READS'), 'true'),
    AUTH_TOKEN_CACHE_SIZE: withDefault(int('AUTH_TOKEN_CACHE_SIZE', 0, 10_000_000), '10000'),
    // Unset: guests may post on the embedded default, not when AUTH_JWKS_URL names a provider.
    CHAT_GUESTS: optional(bool('CHAT_GUESTS')),

    DATABASE_URL: optional(urlOf('DATABASE_URL', 'postgres', 'postgresql')),
    PGLITE_DATA_DIR: withDefault(z.string().trim().min(1), './data/pglite'),
    PGLITE_PORT: withDefault(
      int('PGLITE_PORT', 0, 65535).refine((p) => p !== 5432, {
        message: 'PGLITE_PORT must not be 5432 (a real PostgreSQL server may own it); use 0 for a free port',
      }),
      '0',
    ),
    DB_POOL_SIZE: withDefault(int('DB_POOL_SIZE', 1, 1000), '10'),
    DB_CONNECT_TIMEOUT_MS: withDefault(int('DB_CONNECT_TIMEOUT_MS', 1, 600_000), '5000'),
    DB_IDLE_TIMEOUT_MS: withDefault(int('DB_IDLE_TIMEOUT_MS', 0, 3_600_000), '30000'),
    DB_STATEMENT_TIMEOUT_MS: withDefault(int('DB_STATEMENT_TIMEOUT_MS', 0, 3_600_000), '10000'),
    DB_MIGRATIONS_RUN: withDefault(bool('DB_MIGRATIONS_RUN'), 'true'),
    DB_NAMED_STATEMENTS: withDefault(bool('DB_NAMED_STATEMENTS'), 'true'),
    READY_DB_TIMEOUT_MS: withDefault(int('READY_DB_TIMEOUT_MS', 1, 60_000), '1000'),

    WEB_CONCURRENCY: withDefault(int('WEB_CONCURRENCY', 1, 64), '1'),

    SHUTDOWN_DRAIN_DELAY_MS: withDefault(int('SHUTDOWN_DRAIN_DELAY_MS', 0, 600_000), '0'),
    SHUTDOWN_GRACE_MS: withDefault(int('SHUTDOWN_GRACE_MS', 0, 600_000), '10000'),

    REDIS_URL: optional(urlOf('REDIS_URL', 'redis', 'rediss')),
    REDIS_KEY_PREFIX: withDefault(
      z
        .string()
        .trim()
        .regex(/^[\w:.-]{0,64}$/, { message: 'REDIS_KEY_PREFIX must be up to 64 letters, digits, or _ : . -' }),
      'nest-async-api:',
    ),

    POSTS_SERVICE_URL: optional(urlOf('POSTS_SERVICE_URL', 'http', 'https')),
    COMMENTS_SERVICE_URL: optional(urlOf('COMMENTS_SERVICE_URL', 'http', 'https')),
    UPSTREAM_HOST: withDefault(z.string().trim().min(1), '127.0.0.1'),
    UPSTREAM_PORT: withDefault(int('UPSTREAM_PORT', 0, 65535), '4010'),
    UPSTREAM_MAX_SOCKETS: withDefault(int('UPSTREAM_MAX_SOCKETS', 1, 10_000), '64'),
    PROFILE_DEADLINE_MS: withDefault(int('PROFILE_DEADLINE_MS', 1, 600_000), '2000'),
    PROFILE_BATCH_CONCURRENCY: withDefault(int('PROFILE_BATCH_CONCURRENCY', 1, 100), '5'),
    PROFILE_CACHE_TTL_MS: withDefault(int('PROFILE_CACHE_TTL_MS', 0, 86_400_000), '30000'),
    PROFILE_STALE_TTL_MS: withDefault(int('PROFILE_STALE_TTL_MS', 0, 86_400_000), '300000'),

    SMTP_URL: optional(urlOf('SMTP_URL', 'smtp', 'smtps')),
    SMTP_FROM: withDefault(
      z.string().trim().min(3, { message: 'SMTP_FROM must be a mail address' }),
      'nest-async-api <noreply@localhost>',
    ),
    SMTP_TLS_REJECT_UNAUTHORIZED: withDefault(bool('SMTP_TLS_REJECT_UNAUTHORIZED'), 'true'),
    SMTP_REQUIRE_TLS: withDefault(bool('SMTP_REQUIRE_TLS'), 'false'),
    MAIL_OUTBOX_DIR: withDefault(z.string().trim().min(1), './data/mail'),
    NOTIFY_CONCURRENCY: withDefault(int('NOTIFY_CONCURRENCY', 1, 1000), '4'),
    NOTIFY_POLL_INTERVAL_MS: withDefault(int('NOTIFY_POLL_INTERVAL_MS', 10, 600_000), '500'),
    NOTIFY_LEASE_MS: withDefault(int('NOTIFY_LEASE_MS', 1000, 3_600_000), '60000'),
    NOTIFY_WORKER_ENABLED: withDefault(bool('NOTIFY_WORKER_ENABLED'), 'true'),

    WORKER_POOL_SIZE: withDefault(int('WORKER_POOL_SIZE', 0, 256), '0'),
    WORKER_POOL_MAX_QUEUE: withDefault(int('WORKER_POOL_MAX_QUEUE', 0, 100_000), '32'),
    PROCESS_DATA_BODY_LIMIT_BYTES: withDefault(
      int('PROCESS_DATA_BODY_LIMIT_BYTES', 1, 1024 * 1024 * 1024),
      String(16 * 1024 * 1024),
    ),

    EVENTS_REPLAY_SIZE: withDefault(int('EVENTS_REPLAY_SIZE', 1, 1_000_000), '1000'),
    EVENTS_HEARTBEAT_MS: withDefault(int('EVENTS_HEARTBEAT_MS', 10, 3_600_000), '15000'),
    SSE_MAX_BUFFER_BYTES: withDefault(int('SSE_MAX_BUFFER_BYTES', 1024, 1024 * 1024 * 1024), String(1024 * 1024)),

    CHAT_RATE_PER_SEC: withDefault(int('CHAT_RATE_PER_SEC', 1, 1_000_000), '10'),
    CHAT_RATE_BURST: withDefault(int('CHAT_RATE_BURST', 1, 10_000_000), '20'),
    CHAT_PING_INTERVAL_MS: withDefault(int('CHAT_PING_INTERVAL_MS', 10, 3_600_000), '30000'),
    CHAT_MAX_BUFFERED_BYTES: withDefault(int('CHAT_MAX_BUFFERED_BYTES', 1024, 1024 * 1024 * 1024), String(1024 * 1024)),
    CHAT_PRESENCE_TTL_S: withDefault(int('CHAT_PRESENCE_TTL_S', 3, 3600), '15'),
    CHAT_PRESENCE_EVENTS_MAX: withDefault(int('CHAT_PRESENCE_EVENTS_MAX', 0, 1_000_000), '100'),
    CHAT_PRESENCE_INTERVAL_MS: withDefault(int('CHAT_PRESENCE_INTERVAL_MS', 10, 60_000), '1000'),

    RATE_LIMIT_RATE: withDefault(int('RATE_LIMIT_RATE', 0, 1_000_000), '100'),
    RATE_LIMIT_CAPACITY: withDefault(int('RATE_LIMIT_CAPACITY', 0, 10_000_000), '200'),
    RATE_LIMIT_ANONYMOUS_RATE: withDefault(int('RATE_LIMIT_ANONYMOUS_RATE', 0, 1_000_000), '20'),
    RATE_LIMIT_ANONYMOUS_CAPACITY: withDefault(int('RATE_LIMIT_ANONYMOUS_CAPACITY', 0, 10_000_000), '40'),

    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: withDefault(int('LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS', 0, 600_000), '1000'),
    LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION: withDefault(ratio('LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION'), '0'),
    LOAD_SHED_MAX_HEAP_BYTES: withDefault(int('LOAD_SHED_MAX_HEAP_BYTES', 0, Number.MAX_SAFE_INTEGER), '0'),
    LOAD_SHED_RETRY_AFTER_S: withDefault(int('LOAD_SHED_RETRY_AFTER_S', 1, 3600), '2'),

    ...policyDefaults,
    ...policyOverrides,
  })
  .superRefine((env, ctx) => {
    const raw = env as unknown as Readonly<Record<string, number | undefined>>;
    for (const dep of DEPENDENCIES) {
      const setting = (key: PolicySetting): number => raw[`${dep.toUpperCase()}_${key}`] ?? raw[key] ?? 0;
      const [min, max, initial] = (['ADAPTIVE_MIN_LIMIT', 'ADAPTIVE_MAX_LIMIT', 'ADAPTIVE_INITIAL_LIMIT'] as const).map(
        setting,
      );
      if (min === undefined || max === undefined || initial === undefined) continue;
      if (min > max || initial < min || initial > max) {
        ctx.addIssue({
          code: 'custom',
          path: [`${dep.toUpperCase()}_ADAPTIVE_INITIAL_LIMIT`],
          message: `${dep}: ADAPTIVE_MIN_LIMIT (${String(min)}) <= ADAPTIVE_INITIAL_LIMIT (${String(initial)}) <= ADAPTIVE_MAX_LIMIT (${String(max)}) must hold`,
        });
      }
    }
    if (env.AUTH_JWKS_URL !== undefined && env.AUTH_ISSUER === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_ISSUER'],
        message: "AUTH_ISSUER is required with AUTH_JWKS_URL (the provider's issuer, as in its tokens' iss)",
      });
    }
  });

export type Env = z.infer<typeof envSchema>;
